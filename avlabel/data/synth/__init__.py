"""The synthetic audio-visual benchmark: class table, sound and picture generators, the writer.

See `avlabel.data.synth.generate` for the output format and the choices behind the defaults.
"""

from avlabel.data.synth.generate import SynthConfig, generate_benchmark, load_synth_description, plan_clips

__all__ = ["SynthConfig", "generate_benchmark", "load_synth_description", "plan_clips"]
