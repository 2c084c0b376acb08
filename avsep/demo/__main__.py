"""``python -m avsep.demo <root>``: generate the demo dataset by hand (:mod:`avsep.demo.generate`)."""

from avsep.demo.generate import main

if __name__ == "__main__":
    main()
