"""Body paragraphs from trafilatura's structured output (SPEC §1 paragraph rules)."""

from __future__ import annotations

import lxml.html

from waikan.extract.body import trafilatura_blocks

PROSE = (
    "The council voted on Tuesday to approve the new budget after a long debate that lasted"
    " well into the night, with members split over spending on roads and schools."
)


def _page(body: str) -> lxml.html.HtmlElement:
    html = f"<html><head><title>t</title></head><body><article>{body}</article></body></html>"
    return lxml.html.document_fromstring(html)


def test_each_block_element_is_one_paragraph() -> None:
    tree = _page(
        f"<p>{PROSE}</p><h2>What happens next</h2><p>{PROSE} Second.</p>"
        f"<ul><li>First point of the plan is here</li><li>Second point of the plan</li></ul>"
        f"<blockquote><p>{PROSE} Quoted.</p></blockquote><p>{PROSE} Last.</p>"
    )
    blocks = trafilatura_blocks(tree, None)
    kinds = [b.kind for b in blocks]
    assert kinds[0] == "p"
    assert "h" in kinds and kinds.count("li") == 2
    assert blocks[-1].text.endswith("Last.")


def test_line_breaks_become_spaces_and_whitespace_collapses() -> None:
    tree = _page(f"<p>{PROSE}<br>Next   line\n here.</p><p>{PROSE}</p><p>{PROSE}</p>")
    first = trafilatura_blocks(tree, None)[0].text
    assert "nightwith" not in first
    assert "schools. Next line here." in first


def test_figures_are_not_paragraphs() -> None:
    tree = _page(
        f"<figure><img src='a.jpg'><figcaption>A caption that is not body</figcaption></figure>"
        f"<p>{PROSE}</p><p>{PROSE}</p><p>{PROSE}</p>"
    )
    assert all("caption" not in b.text for b in trafilatura_blocks(tree, None))


def test_tree_is_not_mutated() -> None:
    tree = _page(f"<figure><figcaption>Cap</figcaption></figure><p>{PROSE}</p>")
    before = lxml.html.tostring(tree)
    trafilatura_blocks(tree, None)
    assert lxml.html.tostring(tree) == before
