"""The audio side of avlabel (paper sections 3.3 and 4.2.3).

* :mod:`~avlabel.audio.decode` -- PyAV decoding of a clip's sound track into 16 kHz mono windows.
* :mod:`~avlabel.audio.features` -- AST's log-mel filterbank (batched, CPU or GPU).
* :mod:`~avlabel.audio.ast` -- the frozen Audio Spectrogram Transformer (embedding + AudioSet tags).
* :mod:`~avlabel.audio.embedders` -- the table of audio embedders (``ast``, ``logmel``).
* :mod:`~avlabel.audio.cache` -- the on-disk, memory-mapped, resumable audio cache.
* :mod:`~avlabel.audio.extract` -- the pipeline that fills the cache (DataLoader workers).
* :mod:`~avlabel.audio.targets` -- IoU/Dice relevance targets between audio tags and SAVLD.

Nothing heavy is imported here; import the submodules you need.
"""
