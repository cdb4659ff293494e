"""Writers that turn a trained clustering model into deployable artifacts.

Installed as ``keras_deepclust.export`` (the folder is ``export/`` in the repository).
The SavedModel, ONNX and TFLite writers arrive with the export issue; this package
exists now so the install layout and import name are fixed from the start.
"""
