"""From a model bundle to detections over folders of recordings, and back through a review.

* :mod:`~soundtransfer.detection.thresholds`: per-class thresholds files (CSV or JSON).
* :mod:`~soundtransfer.detection.tables`: selection tables (Raven), label tracks (Audacity),
  CSV, JSON and text, per recording or combined; read back for the review.
* :mod:`~soundtransfer.detection.folder`: ``predict`` over files and folders (mirrored output
  tree, atomic per-recording results, resume, failed recordings, torchrun ranks sharing them).
* :mod:`~soundtransfer.detection.review`: detections cut into clips with a page to mark them;
  :mod:`~soundtransfer.detection.calibrate`: thresholds reaching a target precision from the
  marks.
"""
