"""The audio side of avlabel (paper sections 3.3 and 4.2.3).

* `decode` -- PyAV decoding of a clip's sound track into 16 kHz mono windows.
* `features` -- AST's log-mel filterbank (batched, CPU or GPU).
* `ast` -- the frozen Audio Spectrogram Transformer (embedding + AudioSet tags).
* `embedders` -- the table of audio embedders (``ast``, ``logmel``).
* `tokens` -- the time-token grid: AVT's audio tokens, their valid lengths and energies.
* `masking` -- random token masks and activity-selected segment masks over audio tokens (AVT).
* `cache` -- the on-disk, memory-mapped, resumable audio cache (with time tokens on request).
* `extract` -- the pipeline that fills the cache (DataLoader workers).
* `targets` -- IoU/Dice relevance targets between audio tags and SAVLD.

Nothing heavy is imported here; import the submodules you need.
"""
