"""unetkit in napari: segment with a model file, train on layers, the HeLa sample, a label reader.

Installed with ``pip install "unetkit[napari]"``; napari finds it through the npe2 manifest
``napari.yaml`` (entry point ``napari.manifest``). Its contributions:

- widget **Segment** (:class:`~unetkit.napari_plugin.segment_widget.SegmentWidget`): the
  selected image layer through a checkpoint (``.pt``), ONNX file or bioimage.io package,
  tiled, off the GUI thread, into a Labels layer;
- widget **Train** (:class:`~unetkit.napari_plugin.train_widget.TrainWidget`): a run on
  an image layer and a labels layer, with a live loss and Dice curve and a Stop button;
- sample data **HeLa nuclei** (training and held-out frames, with their labels);
- a reader for the label images that ``unetkit predict`` writes.

The modules without a ``_widget`` in their name (``layers``, ``segment``, ``training``,
``reader``, ``sample``) hold the work and import neither napari nor Qt; the widgets are a
thin layer over them. ``import unetkit`` never imports this package.
"""
