"""Find the competitor of a product: keywords (LLM), catalogue search, compatibility filter,
ranking, selection. Instrumented with the X-Ray SDK as any pipeline would be.

The bug, which reads fine in review: `compatible_categories` looks the product's category up in
a table keyed by slug and falls back to generic accessories when it is missing. For products
that feed B files under a display name ("Phone Cases"), the lookup misses, the filter throws
away every real phone case and keeps stands and mounts, and a laptop stand wins.
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

import xray_sdk
from xray_demo.catalogue import BRANDS, CATEGORIES, Product

PIPELINE = "competitor_selection"
MODEL = "fake-llm-1"
TEMPERATURE = 0.2
MAX_SEARCH_RESULTS = 2500
MIN_OVERLAP = 2

COMPATIBILITY: dict[str, set[str]] = {slug: {slug} for slug in CATEGORIES}
COMPATIBILITY["phone_case"] |= {"screen_protector"}
COMPATIBILITY["tablet_case"] |= {"laptop_sleeve"}
COMPATIBILITY["earbuds"] |= {"headphones"}
GENERIC_ACCESSORIES = {"laptop_stand", "phone_mount", "usb_cable", "desk_lamp"}
_BRAND_WORDS = {b.lower() for b in BRANDS}


def generate_keywords(step: xray_sdk.Step, product: Product) -> list[str]:
    """A deterministic stand-in for an LLM: the words of what the product is, and its noun."""
    step.model(MODEL, TEMPERATURE)
    noun = CATEGORIES[product.category_slug][1] if product.category_slug in CATEGORIES else ""
    main_part = product.title.lower().split(" with ")[0].split()  # what it is, not what it comes with
    keywords = sorted((set(main_part) - _BRAND_WORDS) | set(noun.split()))
    step.output({"keywords": keywords}).why(f"{len(keywords)} keywords from the title and category")
    return keywords


def search_catalogue(step: xray_sdk.Step, catalogue: list[Product], keywords: list[str], asin: str) -> list[Product]:
    """Every product sharing at least two keywords with the query, best overlap first, capped."""
    wanted = set(keywords)
    hits = [(len(wanted & p.words), p) for p in catalogue if p.asin != asin]
    hits = [h for h in hits if h[0] >= MIN_OVERLAP]
    hits.sort(key=lambda h: (-h[0], h[1].asin))
    found = [p for _, p in hits[:MAX_SEARCH_RESULTS]]
    categories = Counter(p.category_slug for p in found)
    step.metrics(results=len(found), categories=len(categories))
    step.output(xray_sdk.summarize(found, fields=["category"], examples=0, top=5))
    step.why(
        f"{len(found)} products share {MIN_OVERLAP}+ keywords; top categories "
        + ", ".join(f"{c} ({n})" for c, n in categories.most_common(3))
    )
    return found


def compatible_categories(product: Product) -> set[str]:
    """Categories a competitor may come from."""
    return COMPATIBILITY.get(product.category, GENERIC_ACCESSORIES)


def compat_filter(step: xray_sdk.Step, product: Product, found: list[Product]) -> list[Product]:
    """Keep candidates from a compatible category and a similar price band."""
    allowed = compatible_categories(product)
    low, high = product.price / 3, product.price * 3
    kept, rejected = [], []
    for p in found:
        if p.category_slug not in allowed:
            rejected.append((_row(p), "category_not_compatible"))
        elif not low <= p.price <= high:
            rejected.append((_row(p), "price_out_of_band"))
        else:
            kept.append(p)
    # Counts per reason become metrics; a sample of each reason is kept as evidence.
    step.decide([_row(p) for p in kept], rejected)
    step.why(
        f"kept candidates in {sorted(allowed)} priced {low:.0f}-{high:.0f} "
        f"(categories compatible with '{product.category}')"
    )
    step.output(xray_sdk.summarize(kept, fields=["category"], examples=0, top=5))
    return kept


def rank_candidates(
    step: xray_sdk.Step, product: Product, keywords: list[str], kept: list[Product]
) -> list[tuple[float, Product]]:
    """Score by title overlap with the keywords, rating as tie-breaker."""
    wanted = set(keywords)
    scored = sorted(
        ((round(len(wanted & p.words) / len(wanted | p.words) + p.rating / 100, 4), p) for p in kept),
        key=lambda s: (-s[0], s[1].asin),
    )
    top = scored[:10]
    step.candidates(kept, top)
    if scored:
        scores = [s for s, _ in scored]
        best_score, best = scored[0]
        shared = sorted(wanted & best.words)
        step.metrics(score_max=best_score, score_p50=round(statistics.median(scores), 4))
        step.why(
            f"top pick {best.asin} '{best.title}' ({best.category_slug}) scored {best_score}: "
            f"shares {shared} with the keywords"
        )
    else:
        step.why("nothing to rank")
    step.artifact("ranked_top10", [dict(_row(p), score=s) for s, p in top], capture="sample")
    return top


def select_best(step: xray_sdk.Step, ranked: list[tuple[float, Product]]) -> Product | None:
    """The highest-scoring candidate."""
    chosen = ranked[0][1] if ranked else None
    step.metrics(candidates_in=len(ranked), candidates_out=1 if chosen else 0)
    step.output(_row(chosen) if chosen else None)
    step.why(f"highest score of {len(ranked)}" if chosen else "no candidate left")
    return chosen


def find_competitor(client: xray_sdk.Client, product: Product, catalogue: list[Product]) -> Product | None:
    """One run of the pipeline for `product`."""
    tags = {"category": product.category_slug, "feed": product.feed}
    with client.start_run(PIPELINE, product.asin, tags=tags, metadata={"title": product.title}) as run:
        keywords = run.step("generate_keywords", "llm", generate_keywords, product)
        found = run.step("search_catalogue", "search", search_catalogue, catalogue, keywords, product.asin)
        kept = run.step("compat_filter", "filter", compat_filter, product, found, id_field="asin")
        ranked = run.step("rank_candidates", "rank", rank_candidates, product, keywords, kept)
        chosen = run.step("select_best", "select", select_best, ranked)
        run.finish(outcome={"competitor": _row(chosen) if chosen else None})
    return chosen


def _row(p: Product) -> dict[str, Any]:
    return {"asin": p.asin, "title": p.title, "category": p.category, "price": p.price}
