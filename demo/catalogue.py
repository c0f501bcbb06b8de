"""A synthetic product catalogue, the same for a given seed on every machine.

Most products come from feed A, which files them under category slugs ("phone_case"). Feed B,
merged later, files a few categories under their display names ("Phone Cases"): the
competitor pipeline's compatibility table is keyed by slug, and that is the bug it trips on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# slug -> (display name, what the product is, descriptors: before it, or after it with "with")
CATEGORIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "phone_case": ("Phone Cases", "phone case", ("slim", "shockproof", "clear", "silicone", "with card slot")),
    "screen_protector": ("Screen Protectors", "screen protector", ("tempered glass", "clear", "phone", "privacy")),
    "phone_charger": ("Phone Chargers", "phone charger", ("fast", "wall", "dual port", "compact")),
    "phone_mount": ("Phone Mounts", "phone mount", ("car", "vent", "magnetic", "dashboard")),
    "laptop_stand": (
        "Laptop Stands",
        "laptop stand",
        ("aluminum", "adjustable", "ergonomic", "with phone holder and case", "with phone holder"),
    ),
    "laptop_sleeve": ("Laptop Sleeves", "laptop sleeve", ("padded", "neoprene", "slim", "water resistant")),
    "tablet_case": ("Tablet Cases", "tablet folio", ("smart", "trifold", "ipad", "leather")),
    "usb_cable": ("USB Cables", "usb-c cable", ("braided", "nylon", "6ft", "fast charging")),
    "headphones": ("Headphones", "headphones", ("over-ear", "noise cancelling", "studio", "foldable")),
    "earbuds": ("Earbuds", "earbuds", ("in-ear", "bluetooth", "sport", "sweatproof")),
    "smartwatch_band": ("Smartwatch Bands", "watch band", ("silicone", "sport", "leather", "quick release")),
    "keyboard": ("Keyboards", "keyboard", ("mechanical", "backlit", "wireless", "compact")),
    "mouse": ("Mice", "mouse", ("ergonomic", "silent", "wireless", "vertical")),
    "webcam": ("Webcams", "webcam", ("1080p", "streaming", "autofocus", "with microphone")),
    "power_bank": ("Power Banks", "power bank", ("portable", "10000mah", "slim", "usb-c")),
    "desk_lamp": ("Desk Lamps", "desk lamp", ("led", "dimmable", "reading", "with usb port")),
}
# The category feed B files under its display name, and how often: it is the demo's subject.
FEED_B_CATEGORIES = ("phone_case",)
FEED_B_SHARE = 0.6
# Phone cases are a fifth of the catalogue; the other categories share the rest.
PHONE_CASE_SHARE = 0.2
BRANDS = ("Acme", "Nimbus", "Vertex", "Orbit", "Kestrel", "Lumen", "Quill", "Zephyr", "Halo", "Tundra")
SIZE = 5000


@dataclass(frozen=True)
class Product:
    """One catalogue entry. `category` is a slug (feed A) or a display name (feed B)."""

    asin: str
    title: str
    category: str
    price: float
    rating: float
    feed: str
    words: frozenset[str]

    @property
    def category_slug(self) -> str:
        """The slug, whichever way the feed spelled the category."""
        return SLUG_OF.get(self.category, self.category)


SLUG_OF = {display: slug for slug, (display, _, _) in CATEGORIES.items()}


def build(seed: int = 7, size: int = SIZE) -> list[Product]:
    """The catalogue for `seed`: `size` products across all categories."""
    rng = random.Random(seed)
    products = []
    others = sorted(slug for slug in CATEGORIES if slug != "phone_case")
    for i in range(size):
        slug = "phone_case" if rng.random() < PHONE_CASE_SHARE else others[i % len(others)]
        display, noun, descriptors = CATEGORIES[slug]
        feed = "B" if slug in FEED_B_CATEGORIES and rng.random() < FEED_B_SHARE else "A"
        chosen = rng.sample(descriptors, k=rng.randint(1, 3))
        before = [d for d in chosen if not d.startswith("with ")]
        after = [d for d in chosen if d.startswith("with ")][:1]
        title = " ".join([rng.choice(BRANDS), *before, noun, *after]).title()
        products.append(
            Product(
                asin=f"B0{rng.randrange(16**8):08X}",
                title=title,
                category=display if feed == "B" else slug,
                price=round(rng.uniform(6, 90), 2),
                rating=round(rng.uniform(2.5, 5.0), 1),
                feed=feed,
                words=frozenset(title.lower().split()),
            )
        )
    return products
