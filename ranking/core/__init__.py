"""PrefLab's numerical core: pure functions over numpy arrays.

Nothing in this package imports Django; services in the ``ranking`` and
``annotator`` apps translate database rows into arrays and back.
"""
