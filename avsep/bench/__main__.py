"""``python -m avsep.bench``: the workflow benchmark (:mod:`avsep.bench.workflow`)."""

from avsep.bench.workflow import main

if __name__ == "__main__":
    main()
