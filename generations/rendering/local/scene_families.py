"""The vocabulary of the `local` engine's text-to-video scenes, and what each word paints.

scenes.py reads a prompt against these tables and composes the
layers they name; nothing here paints. A scene is built from:

* element families (`FAMILIES`): the words that name each one (and those that only hint at
  it, when no element is named), the times of day it suggests when the prompt names none,
  the layers it contributes and the ones it rules out, and how it changes the shared look
  (sky colours, ground, ridge shapes);
* times of day (`TIMES`): sky colours, where the sun sits and how it moves, the layers the
  light brings (the sun, stars at night, weather clouds) and how it lights the painters;
* moods and motion words: the layers they add (mist, swirl, floating motes); their effect on
  the grade and the pace is read by the scene itself.

A layer kind (`LayerKind`) names one painter in `scenes.LAYERS`; the tests check that every
kind named here has one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Colour = tuple[float, float, float]

LayerKind = Literal[
    "nebula",
    "aurora",
    "stars",
    "sun",
    "clouds",
    "weather_clouds",
    "ridges",
    "ocean",
    "neon_floor",
    "skyline",
    "trees",
    "light_shafts",
    "fire",
    "swirl",
    "snowfall",
    "rain",
    "sparks",
    "bokeh",
    "motes",
    "mist",
]


@dataclass(frozen=True)
class SkyLook:
    """A family that brings its own sky instead of the time of day's gradient."""

    zenith: Colour
    horizon: Colour
    sun: Colour | None = None  # None: the time of day's sun colour
    retro_sun: bool = False  # a big sun cut by horizontal stripes (synthwave)


@dataclass(frozen=True)
class Ridges:
    """Silhouette lines on the horizon (three depths)."""

    rough: float  # height variation, fraction of the frame height, nearest ridge
    smooth: int  # field pixels between random control points: larger is gentler
    # (near, far) colours; None: shaded from the sky's horizon colour.
    colours: tuple[Colour, Colour] | None = None


@dataclass(frozen=True)
class Family:
    """One element a prompt can name, and what it contributes to the picture."""

    name: str
    words: tuple[str, ...]
    # The time of day when the prompt names none: the seed picks one (first family wins).
    times: tuple[str, ...]
    layers: tuple[LayerKind, ...]
    # Layers the family rules out, whoever else asks for them (e.g. no sun in deep space).
    vetoes: tuple[LayerKind, ...] = ()
    dawn_layers: tuple[LayerKind, ...] = ()  # added when the time of day is dawn
    ground: bool = False  # a horizon across the frame, instead of sky all the way down
    # Besides one of `words`, one of these must appear too ("city lights" is no aurora).
    needs: tuple[str, ...] = ()
    # Words that suggest this family only when no family's `words` appear at all: a light,
    # the weather or a mood still deserves a fitting scene rather than a random one.
    hints: tuple[str, ...] = ()
    sky: SkyLook | None = None
    ridges: Ridges | None = None
    cap: Colour | None = None  # the colour it lays on the nearest ridge (snow caps)
    # Weather sets the light whatever else is named: with no time word its first time wins,
    # and a sunny day turns overcast.
    weather: bool = False

    def matches(self, words: set[str]) -> bool:
        return bool(words.intersection(self.words)) and (
            not self.needs or bool(words.intersection(self.needs))
        )


@dataclass(frozen=True)
class TimeOfDay:
    """The light: sky colours, the sun's place and path, and what it brings or rules out."""

    name: str
    words: tuple[str, ...]  # empty: chosen by families and weather, never named
    zenith: Colour
    horizon: Colour
    sun: Colour  # the sun's (or the moon's) colour, which also lights clouds and shafts
    layers: tuple[LayerKind, ...]
    vetoes: tuple[LayerKind, ...] = ()
    low_sun: bool = False  # the sun sits just above the horizon instead of high in the sky
    sun_sink: float = 0.0  # how fast the sun moves down the frame (per paced second)
    sun_glow: float = 1.0  # strength of the halo around the disc
    cloud_shade: Colour = (0.45, 0.47, 0.55)  # the unlit side of clouds
    cloud_contrast: float = 1.0  # lit vs shaded side: flat under a grey sky
    ground_light: float = 1.0  # brightness of the ridges
    lights_on: bool = False  # city windows lit and buildings dark


# One entry a line group: name and words; the sky's zenith and horizon, the sun; the rest.
TIMES: tuple[TimeOfDay, ...] = (
    TimeOfDay("dawn", ("dawn", "sunrise", "morning", "daybreak"),
              zenith=(0.22, 0.27, 0.52), horizon=(1.0, 0.66, 0.5), sun=(1.0, 0.85, 0.7),
              layers=("sun", "weather_clouds"), low_sun=True, sun_sink=-0.008),
    TimeOfDay("day", ("day", "noon", "midday", "sunny", "afternoon", "daylight", "bright"),
              zenith=(0.14, 0.38, 0.78), horizon=(0.68, 0.84, 0.96), sun=(1.0, 0.98, 0.92),
              layers=("sun",)),
    TimeOfDay("sunset", ("sunset", "dusk", "evening", "golden", "twilight", "sundown"),
              zenith=(0.16, 0.09, 0.3), horizon=(1.0, 0.48, 0.2), sun=(1.0, 0.78, 0.45),
              layers=("sun", "weather_clouds"), low_sun=True, sun_sink=0.012, lights_on=True),
    TimeOfDay("night", ("night", "midnight", "moon", "moonlight", "moonlit", "nocturnal", "dark"),
              zenith=(0.008, 0.012, 0.045), horizon=(0.05, 0.07, 0.17), sun=(0.85, 0.9, 1.0),
              layers=("sun", "stars"), vetoes=("light_shafts",),  # no sunbeams by moonlight
              sun_glow=0.35, cloud_shade=(0.1, 0.1, 0.16), ground_light=0.25, lights_on=True),
    TimeOfDay("overcast", (),
              zenith=(0.36, 0.4, 0.46), horizon=(0.66, 0.69, 0.72), sun=(0.95, 0.95, 0.95),
              layers=("weather_clouds",), cloud_contrast=0.4),
    TimeOfDay("storm", (),
              zenith=(0.08, 0.09, 0.12), horizon=(0.26, 0.29, 0.34), sun=(0.7, 0.75, 0.85),
              layers=("weather_clouds",), cloud_contrast=0.4, lights_on=True),
)  # fmt: skip
TIME_BY_NAME = {time.name: time for time in TIMES}
# In table order: when a prompt names several times, the last one wins.
TIME_WORDS: dict[str, tuple[str, ...]] = {time.name: time.words for time in TIMES if time.words}

COLOUR_WORDS: dict[str, Colour] = {
    "red": (0.95, 0.18, 0.15),
    "crimson": (0.85, 0.08, 0.2),
    "orange": (1.0, 0.5, 0.12),
    "amber": (1.0, 0.65, 0.15),
    "yellow": (1.0, 0.88, 0.25),
    "gold": (1.0, 0.75, 0.3),
    "golden": (1.0, 0.72, 0.3),
    "green": (0.25, 0.85, 0.35),
    "emerald": (0.1, 0.75, 0.45),
    "teal": (0.1, 0.7, 0.7),
    "cyan": (0.15, 0.85, 0.95),
    "turquoise": (0.2, 0.85, 0.8),
    "blue": (0.2, 0.4, 1.0),
    "azure": (0.3, 0.6, 1.0),
    "purple": (0.6, 0.25, 0.9),
    "violet": (0.55, 0.3, 1.0),
    "magenta": (0.95, 0.2, 0.8),
    "pink": (1.0, 0.45, 0.7),
    "white": (0.95, 0.95, 0.95),
    "silver": (0.8, 0.82, 0.88),
}
MOOD_WORDS: dict[str, tuple[str, ...]] = {
    "dark": ("dark", "moody", "gloomy", "ominous", "eerie", "noir", "haunted", "somber", "grim"),
    "dreamy": ("dreamy", "dream", "ethereal", "magical", "soft", "fantasy", "mystical", "glowing"),
    "vibrant": ("vibrant", "vivid", "colorful", "colourful", "happy", "joyful", "cheerful"),
    "misty": ("misty", "mist", "fog", "foggy", "haze", "hazy", "smoky"),
}
MOOD_LAYERS: dict[str, tuple[LayerKind, ...]] = {
    "dreamy": ("motes",),
    "misty": ("mist",),
}
PACE_WORDS: dict[str, tuple[tuple[str, ...], float]] = {
    "slow": (("slow", "slowly", "calm", "gentle", "still", "serene", "peaceful", "quiet"), 0.5),
    "fast": (("fast", "rapid", "quick", "energetic", "wild", "raging", "intense", "racing"), 1.9),
}
SWIRL_WORDS = ("swirling", "swirl", "spiral", "vortex", "whirl", "whirling", "twisting")
DRIFT_WORDS = ("drifting", "drift", "floating", "flowing", "gliding", "wandering")
SWIRL_LAYERS: tuple[LayerKind, ...] = ("swirl",)
DRIFT_LAYERS: tuple[LayerKind, ...] = ("motes",)
# Weather that names no element of its own: a windy day is still a sky.
WIND_WORDS = ("wind", "windy", "breeze", "breezy", "gust", "gusty", "rainbow", "sunshine")

# One entry a line group: name and words; times and layers; what else it brings.
FAMILIES: tuple[Family, ...] = (
    Family("ocean", (*("ocean", "sea", "wave", "waves", "surf", "beach", "shore", "coast", "lake"),
                     *("water", "pond", "lakes", "river", "stream", "creek", "brook", "lagoon"),
                     *("bay", "harbor", "harbour", "marina", "pier", "dock", "canal", "waterfall"),
                     *("tide", "boat", "boats", "sail", "sails", "sailing", "sailboat", "ship"),
                     *("yacht", "seaside", "island")),
           times=("day", "sunset", "dawn", "night"), layers=("ocean",), ground=True),
    Family("fire", ("fire", "flame", "flames", "campfire", "bonfire", "inferno", "burning",
                    "embers"),
           times=("night",), layers=("fire", "sparks"),
           vetoes=("swirl",)),  # the flames already swirl
    Family("forest", ("forest", "jungle", "woods", "tree", "trees", "pine", "grove", "woodland"),
           times=("day", "dawn", "sunset"), layers=("trees", "light_shafts", "motes"),
           dawn_layers=("mist",), ground=True),
    # A named light, wind or a dreamy mood paints a sky at that time (a starry one at night,
    # from the night's stars: deep space needs a space word).
    Family("sky", ("sky", "clouds", "cloud", "cloudy", "heaven", "horizon", "meadow", "field"),
           times=("day", "sunset", "dawn"), layers=("clouds",),
           hints=(*(word for words in TIME_WORDS.values() for word in words),
                  *MOOD_WORDS["dreamy"], *WIND_WORDS)),
    Family("space", ("space", "galaxy", "nebula", "cosmos", "cosmic", "universe", "planet",
                     "stars"),
           times=("night",), layers=("nebula", "stars"), vetoes=("sun", "weather_clouds", "swirl"),
           sky=SkyLook(zenith=(0.0, 0.0, 0.01), horizon=(0.02, 0.02, 0.06))),
    Family("city", ("city", "skyline", "street", "downtown", "urban", "town", "buildings",
                    "metropolis"),
           times=("night", "sunset"), layers=("skyline", "bokeh"), ground=True),
    Family("snow", ("snow", "snowy", "snowfall", "winter", "blizzard", "frost", "frozen",
                    "snowflakes"),
           times=("overcast", "day", "dawn"), layers=("snowfall",), ground=True,
           cap=(0.85, 0.88, 0.95)),
    Family("rain", (*("rain", "rainy", "raining", "storm", "stormy", "drizzle", "downpour"),
                    *("thunderstorm", "thunder", "lightning", "raindrops")),
           times=("storm",), layers=("rain",), vetoes=("sun",), weather=True),
    Family("neon", ("neon", "cyberpunk", "synthwave", "retro", "arcade", "vaporwave", "cyber",
                    "80s"),
           times=("night",), layers=("neon_floor", "bokeh"), vetoes=("weather_clouds",),
           ground=True, sky=SkyLook(zenith=(0.04, 0.0, 0.1), horizon=(0.45, 0.05, 0.4),
                                    sun=(1.0, 0.45, 0.3), retro_sun=True)),
    Family("desert", ("desert", "dunes", "dune", "sand", "sahara", "canyon", "arid"),
           times=("day", "sunset"), layers=("ridges",), ground=True,
           ridges=Ridges(rough=0.05, smooth=40, colours=((0.85, 0.55, 0.3), (0.55, 0.3, 0.2)))),
    Family("mountains", ("mountain", "mountains", "peaks", "hills", "valley", "alps", "cliffs"),
           times=("dawn", "day", "sunset"), layers=("ridges",), dawn_layers=("mist",), ground=True,
           hints=MOOD_WORDS["misty"],  # mist lies best in a valley
           ridges=Ridges(rough=0.16, smooth=18)),
    Family("aurora", ("aurora", "northern", "borealis", "lights"),
           times=("night",), layers=("aurora", "stars"), vetoes=("swirl",),
           needs=("aurora", "borealis", "northern")),
)  # fmt: skip
FAMILY_BY_NAME = {family.name: family for family in FAMILIES}
ELEMENT_WORDS: dict[str, tuple[str, ...]] = {family.name: family.words for family in FAMILIES}
# Elements tried, in order, when no word is known at all: the prompt's digest picks one.
FALLBACK_ELEMENTS = ("sky", "ocean", "space", "aurora", "mountains", "desert", "forest", "neon")


@dataclass
class SceneRecipe:
    """What the words asked for; recorded so tests and docs can see the reading."""

    elements: list[str]
    time_of_day: str
    moods: list[str]
    colours: list[str]
    pace: float
    swirl: bool
    drift: bool
    extra: dict[str, float] = field(default_factory=dict)
