"""Synthetic sounds: small additive/subtractive synthesisers, one per class or background.

Each generator is ``fn(rng, num_samples, sample_rate) -> (num_samples,) float32`` and draws its own
per-clip variation (pitch, tempo, melody, timbre) from ``rng``, so clips of a class differ but
keep the acoustic signature AudioSet's label describes: a bowed string's sawtooth with vibrato, a
xylophone's quickly decaying inharmonic partials, applause's dense noise bursts, and so on.
Everything is vectorised numpy; filtering is done in the frequency domain.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])  # semitone steps of a major scale


def _time(num_samples: int, sample_rate: int) -> np.ndarray:
    return np.arange(num_samples, dtype=np.float64) / sample_rate


def _melody(rng, num_samples, sample_rate, low_hz, high_hz, note_seconds=(0.2, 0.6)):
    """A random stepwise major-scale melody: per-sample f0 (Hz) and note start sample indices."""
    root = rng.uniform(low_hz, high_hz / 2)
    f0 = np.empty(num_samples)
    starts = []
    position, degree = 0, int(rng.integers(0, 7))
    while position < num_samples:
        length = int(rng.uniform(*note_seconds) * sample_rate)
        octave, step = divmod(degree, 7)
        f0[position : position + length] = min(high_hz, root * 2 ** ((12 * octave + _MAJOR[step]) / 12))
        starts.append(position)
        position += length
        degree = int(np.clip(degree + rng.integers(-2, 3), 0, 13))
    return f0, np.array(starts)


def _additive(f0: np.ndarray, amplitudes, sample_rate: int, vibrato=(0.0, 5.0), rng=None) -> np.ndarray:
    """Sum of harmonics ``n * f0`` with amplitudes ``amplitudes[n-1]``, band-limited below Nyquist."""
    depth, rate = vibrato
    t = _time(len(f0), sample_rate)
    phase0 = rng.uniform(0, 2 * np.pi) if rng is not None else 0.0
    frequency = f0 * (1 + depth * np.sin(2 * np.pi * rate * t + phase0))
    phase = 2 * np.pi * np.cumsum(frequency) / sample_rate
    harmonics = np.arange(1, len(amplitudes) + 1)[:, None]
    audible = (harmonics * frequency[None] < 0.45 * sample_rate).astype(np.float64)  # (N, S)
    return (np.asarray(amplitudes)[:, None] * audible * np.sin(harmonics * phase[None])).sum(0)


def _note_envelope(num_samples, starts, sample_rate, attack=0.02, release=0.05):
    """1 during notes, with short attack/release ramps at each note boundary (legato articulation)."""
    envelope = np.ones(num_samples)
    bounds = list(starts) + [num_samples]
    ramp_in, ramp_out = int(attack * sample_rate), int(release * sample_rate)
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        a = min(ramp_in, stop - start)
        envelope[start : start + a] = np.linspace(0.2, 1.0, a)
        r = min(ramp_out, stop - start - a)
        if r > 0:
            envelope[stop - r : stop] = np.linspace(1.0, 0.2, r)
    return envelope


def _filtered_noise(rng, num_samples, sample_rate, low_hz, high_hz, tilt=0.0):
    """Gaussian noise kept between ``low_hz`` and ``high_hz``, spectrum scaled by ``f ** tilt``."""
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    frequency = np.fft.rfftfreq(num_samples, 1 / sample_rate)
    gain = ((frequency >= low_hz) & (frequency <= high_hz)) * np.maximum(frequency, 1.0) ** tilt
    return np.fft.irfft(spectrum * gain, n=num_samples)


def _hits(rng, num_samples, sample_rate, times, make_hit):
    """Place the event ``make_hit(rng) -> samples`` at every time in ``times`` (seconds)."""
    out = np.zeros(num_samples)
    for time in times:
        start = int(time * sample_rate)
        if start >= num_samples:
            continue
        hit = make_hit(rng)[: num_samples - start]
        out[start : start + len(hit)] += hit
    return out


def drums(rng, num_samples, sample_rate):
    """A rock beat: kick on 1 and 3, snare on 2 and 4, hi-hat on eighths, at 90-150 bpm."""
    beat = 60 / rng.uniform(90, 150)
    t_hit = np.arange(int(0.4 * sample_rate)) / sample_rate

    def kick(r):
        sweep = 2 * np.pi * np.cumsum(45 + 90 * np.exp(-t_hit / 0.03)) / sample_rate
        return np.sin(sweep) * np.exp(-t_hit / 0.12)

    def snare(r):
        return (0.6 * r.standard_normal(len(t_hit)) + 0.4 * np.sin(2 * np.pi * 190 * t_hit)) * np.exp(-t_hit / 0.06)

    def hihat(r):
        noise = r.standard_normal(len(t_hit))
        return 0.3 * (noise - np.convolve(noise, np.ones(4) / 4, mode="same")) * np.exp(-t_hit / 0.02)

    length = num_samples / sample_rate
    offset = rng.uniform(0, beat)
    beats = np.arange(offset, length, beat)
    return (
        _hits(rng, num_samples, sample_rate, beats[::2], kick)
        + _hits(rng, num_samples, sample_rate, beats[1::2], snare)
        + _hits(rng, num_samples, sample_rate, np.arange(offset, length, beat / 2), hihat)
    )


def trumpet(rng, num_samples, sample_rate):
    """Brass: many strong harmonics (bright), tongued notes, light vibrato, 230-900 Hz."""
    f0, starts = _melody(rng, num_samples, sample_rate, 230, 900, (0.15, 0.45))
    amplitudes = [1.0 / n**0.6 for n in range(1, 16)]
    return _additive(f0, amplitudes, sample_rate, (0.004, 5.5), rng) * _note_envelope(
        num_samples, starts, sample_rate, 0.03, 0.03
    )


def whistling(rng, num_samples, sample_rate):
    """A near-pure tone at 1-2.5 kHz with glides, vibrato and breath noise."""
    f0, starts = _melody(rng, num_samples, sample_rate, 1000, 2500, (0.2, 0.5))
    smooth = np.convolve(f0, np.ones(800) / 800, mode="same")  # portamento between notes
    smooth[:400], smooth[-400:] = f0[:400], f0[-400:]
    tone = _additive(smooth, [1.0, 0.05], sample_rate, (0.01, 6.0), rng)
    breath = _filtered_noise(rng, num_samples, sample_rate, 800, 4000)
    return tone * _note_envelope(num_samples, starts, sample_rate, 0.04, 0.06) + 0.03 * breath / (
        np.abs(breath).max() + 1e-9
    )


def applause(rng, num_samples, sample_rate):
    """Applause: a crowd of claps (short band-passed noise bursts) at 25-70 claps per second."""
    rate = rng.uniform(25, 70)
    times = np.cumsum(rng.exponential(1 / rate, size=int(rate * num_samples / sample_rate * 1.5) + 1))
    t_hit = np.arange(int(0.03 * sample_rate)) / sample_rate

    def clap(r):
        return r.uniform(0.4, 1.0) * r.standard_normal(len(t_hit)) * np.exp(-t_hit / r.uniform(0.004, 0.01))

    claps = _hits(rng, num_samples, sample_rate, times, clap)
    spectrum = np.fft.rfft(claps)
    frequency = np.fft.rfftfreq(num_samples, 1 / sample_rate)
    return np.fft.irfft(spectrum * ((frequency > 500) & (frequency < 5000)), n=num_samples)


def _bowed(rng, num_samples, sample_rate, low_hz, high_hz):
    f0, starts = _melody(rng, num_samples, sample_rate, low_hz, high_hz, (0.3, 0.8))
    amplitudes = [1.0 / n for n in range(1, 25)]  # sawtooth: the bow's stick-slip motion
    tone = _additive(f0, amplitudes, sample_rate, (0.006, 6.0), rng)
    bow = _filtered_noise(rng, num_samples, sample_rate, 2000, 6000)
    return tone * _note_envelope(num_samples, starts, sample_rate, 0.08, 0.08) + 0.02 * bow / (np.abs(bow).max() + 1e-9)


def violin(rng, num_samples, sample_rate):
    """Violin: bowed sawtooth with vibrato, 196-1300 Hz (G3 and up)."""
    return _bowed(rng, num_samples, sample_rate, 196, 1300)


def cello(rng, num_samples, sample_rate):
    """Cello: bowed sawtooth with vibrato, 65-520 Hz (C2 and up)."""
    return _bowed(rng, num_samples, sample_rate, 65, 520)


def xylophone(rng, num_samples, sample_rate):
    """Struck bars: partials at 1, 3.93 and 9.2 x f0 (tuned bar modes), decaying within 0.4 s."""
    f0, starts = _melody(rng, num_samples, sample_rate, 500, 2000, (0.12, 0.3))
    t_hit = np.arange(int(0.5 * sample_rate)) / sample_rate
    out = np.zeros(num_samples)
    for start in starts:
        f = f0[start]
        bar = sum(
            a * np.sin(2 * np.pi * m * f * t_hit) * np.exp(-t_hit / d)
            for m, a, d in ((1.0, 1.0, 0.15), (3.93, 0.4, 0.05), (9.2, 0.15, 0.02))
            if m * f < 0.45 * sample_rate
        )
        hit = bar[: num_samples - start]
        out[start : start + len(hit)] += hit
    return out


def _reed_chord(rng, num_samples, sample_rate, low_hz, high_hz, detune_cents, tremolo_hz, note_seconds):
    """Free-reed instruments: odd-heavy harmonics, two-note chords, detuned reed pairs (beating)."""
    f0, starts = _melody(rng, num_samples, sample_rate, low_hz, high_hz, note_seconds)
    amplitudes = [1.0 / n if n % 2 else 0.5 / n for n in range(1, 14)]
    voices = [f0, f0 * 2 ** (4 / 12)]  # root and major third
    detune = 2 ** (detune_cents / 1200)
    tone = sum(_additive(voice * factor, amplitudes, sample_rate) for voice in voices for factor in (1.0, detune))
    tremolo = 1 + 0.2 * np.sin(2 * np.pi * tremolo_hz * _time(num_samples, sample_rate))
    return tone * tremolo * _note_envelope(num_samples, starts, sample_rate, 0.05, 0.05)


def harmonica(rng, num_samples, sample_rate):
    """Harmonica: reed chords at 260-1400 Hz with a hand tremolo."""
    return _reed_chord(rng, num_samples, sample_rate, 260, 1400, 4, rng.uniform(4, 7), (0.2, 0.5))


def accordion(rng, num_samples, sample_rate):
    """Accordion: musette-tuned reed pairs (strong beating) at 130-900 Hz, bellows swells."""
    return _reed_chord(rng, num_samples, sample_rate, 130, 900, 18, rng.uniform(0.5, 1.5), (0.4, 0.9))


def bagpipes(rng, num_samples, sample_rate):
    """Bagpipes: a continuous low drone (A2 + A3) under a bright, loud chanter melody."""
    drone_hz = rng.uniform(110, 125)
    drone = sum(
        _additive(np.full(num_samples, drone_hz * k), [1.0 / n for n in range(1, 20)], sample_rate) for k in (1, 2)
    )
    f0, _ = _melody(rng, num_samples, sample_rate, 440, 1000, (0.12, 0.35))
    chanter = _additive(f0, [1.0 / n**0.5 for n in range(1, 12)], sample_rate)
    return 0.4 * drone + chanter


def organ(rng, num_samples, sample_rate):
    """Pipe/drawbar organ: sine stacks at 1, 2, 3, 4, 6, 8 x f0, sustained chords, no vibrato."""
    f0, starts = _melody(rng, num_samples, sample_rate, 130, 700, (0.5, 1.0))
    amplitudes = np.zeros(8)
    amplitudes[[0, 1, 2, 3, 5, 7]] = [1.0, 0.7, 0.5, 0.4, 0.25, 0.2]
    chord = sum(_additive(f0 * 2 ** (interval / 12), amplitudes, sample_rate) for interval in (0, 4, 7))
    return chord * _note_envelope(num_samples, starts, sample_rate, 0.01, 0.01)


def lawn_mower(rng, num_samples, sample_rate):
    """A small petrol engine: a bright pulse train at 25-40 firings per second whose speed
    wanders, engine rattle (noise gated by the firings) and broadband blade noise up to 5 kHz."""
    t = _time(num_samples, sample_rate)
    wander = 1 + 0.06 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t + rng.uniform(0, 2 * np.pi))
    firing = np.full(num_samples, rng.uniform(25, 40)) * wander
    pulses = _additive(firing, [1.0 / n**0.7 for n in range(1, 80)], sample_rate)  # harmonics up to ~3 kHz
    phase = np.cumsum(firing) / sample_rate % 1.0
    rattle = _filtered_noise(rng, num_samples, sample_rate, 300, 3000) * np.exp(-phase / 0.15)
    blade = _filtered_noise(rng, num_samples, sample_rate, 800, 5000)
    return (
        pulses / (np.abs(pulses).max() + 1e-9)
        + 0.6 * rattle / (np.abs(rattle).max() + 1e-9)
        + 0.2 * blade / (np.abs(blade).max() + 1e-9)
    )


def white_noise(rng, num_samples, sample_rate):
    """White noise (flat spectrum)."""
    return rng.standard_normal(num_samples)


def pink_noise(rng, num_samples, sample_rate):
    """Pink noise (power falls 3 dB per octave: amplitude ~ f ** -0.5)."""
    return _filtered_noise(rng, num_samples, sample_rate, 20, sample_rate / 2, tilt=-0.5)


def hum(rng, num_samples, sample_rate):
    """Mains hum: 50 or 60 Hz and its harmonics, with a little noise."""
    mains = np.full(num_samples, 50.0 if rng.random() < 0.5 else 60.0)
    return _additive(mains, [1.0, 0.5, 0.6, 0.2, 0.3], sample_rate) + 0.02 * rng.standard_normal(num_samples)


def silence(rng, num_samples, sample_rate):
    """Digital silence."""
    return np.zeros(num_samples)


SOUNDS: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    function.__name__: function
    for function in (
        drums,
        trumpet,
        whistling,
        applause,
        violin,
        cello,
        xylophone,
        harmonica,
        accordion,
        bagpipes,
        organ,
        lawn_mower,
        white_noise,
        pink_noise,
        hum,
        silence,
    )
}


def render_sound(name: str, rng: np.random.Generator, num_samples: int, sample_rate: int, peak: float) -> np.ndarray:
    """Generate sound ``name`` scaled to ``peak`` amplitude (silence stays zero): float32 ``(S,)``."""
    wave = SOUNDS[name](rng, num_samples, sample_rate)
    top = np.abs(wave).max()
    return (wave * (peak / top) if top > 0 else wave).astype(np.float32)
