"""Throughput benchmark of the model configs (``avlabel bench``): clips/s, peak memory, model FLOPs utilisation.

Modules: ``throughput`` (one model or several, training and inference, on random inputs) and
``measure`` (timing, peak memory, FLOP counting and the device's matmul rate). Importing the
package is cheap; each module imports torch inside its functions.
"""
