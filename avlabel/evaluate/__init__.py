"""Evaluation: classification and relevance metrics, multi-view testing and run comparison reports.

Modules: ``metrics`` (top-k, class accuracy, confusion matrix, relevance ROC-AUC/precision/recall),
``multiview`` (spatial crops x temporal clips, softmax averaged per video, paper section 4.1),
``evaluation`` and ``prediction`` (the ``avlabel eval`` / ``avlabel predict`` cores), built from
``run_inputs`` (a trained run's clips and audio, as training saw them), ``views`` (the test views
and the model run over them), ``scoring`` (a split's metrics) and ``outputs`` (the files eval
writes); ``plots`` (the confusion-matrix PNG) and ``report`` (tables shaped like the paper's
Tables 3-5).
Importing the package is cheap; each module imports what it needs.
"""
