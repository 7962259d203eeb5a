"""Parametric object templates of the synthetic benchmark.

Each class is a function ``template(u, a) -> list[Part]``: ``u`` holds continuous proportions in
``[0, 1]`` (at least two are used by every class) and ``a`` the discrete fine-grained attributes,
one integer per entry of the class's attribute table. A :class:`Part` is a polyline in object
coordinates (roughly ``[-1, 1]^2``, y pointing down) with a role that tells the photo renderer how
to paint it and the sketch renderer whether a drawer may leave it out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Part", "ClassTemplate", "TEMPLATES", "CLASS_NAMES", "N_CONTINUOUS"]

#: number of continuous proportions drawn per instance (classes use a prefix of them)
N_CONTINUOUS = 4

BODY, ACCENT, DETAIL = 0, 1, 2  # part roles: main fill colour, second fill colour, dark line


@dataclass
class Part:
    """One polyline of an object.

    ``closed`` parts are polygons (filled in photos when ``role`` is BODY or ACCENT); ``minor``
    parts are details a sketcher may drop; ``DETAIL`` parts are drawn as dark lines only.
    """

    points: np.ndarray
    closed: bool = True
    role: int = BODY
    minor: bool = False


@dataclass(frozen=True)
class ClassTemplate:
    """A class: its name, a table of discrete attributes ``{name: n_values}`` and the drawer."""

    name: str
    attributes: tuple[tuple[str, int], ...]
    draw: Callable[[np.ndarray, tuple[int, ...]], list[Part]]

    def __repr__(self) -> str:
        attrs = ", ".join(f"{n}:{k}" for n, k in self.attributes)
        return f"ClassTemplate({self.name!r}, attributes=[{attrs}])"


# -- primitives ------------------------------------------------------------------------------
def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 28, t0: float = 0.0,
            t1: float = 2 * np.pi) -> np.ndarray:
    t = np.linspace(t0, t1, n, endpoint=not np.isclose(t1 - t0, 2 * np.pi))
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


def rect(cx: float, cy: float, w: float, h: float) -> np.ndarray:
    return np.array([[cx - w / 2, cy - h / 2], [cx + w / 2, cy - h / 2],
                     [cx + w / 2, cy + h / 2], [cx - w / 2, cy + h / 2]])


def poly(*pts: tuple[float, float]) -> np.ndarray:
    return np.asarray(pts, dtype=float)


def star(cx: float, cy: float, r_out: float, r_in: float, k: int, phase: float = -np.pi / 2) -> np.ndarray:
    t = phase + np.arange(2 * k) * np.pi / k
    r = np.where(np.arange(2 * k) % 2 == 0, r_out, r_in)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)


def lerp(u: float, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(u)


def P(points, closed=True, role=BODY, minor=False) -> Part:  # noqa: N802 - short on purpose
    return Part(np.asarray(points, dtype=float), closed, role, minor)


def L(*pts, role=DETAIL, minor=False) -> Part:  # noqa: N802
    return Part(np.asarray(pts, dtype=float), False, role, minor)


# -- the classes -----------------------------------------------------------------------------
def house(u, a):
    w, rh = lerp(u[0], 0.9, 1.4), lerp(u[1], 0.35, 0.7)
    n_win, chimney, door = a
    top = 0.9 - 0.9 * (w / 1.4)
    parts = [P(rect(0, 0.35, w, 0.9)), P(poly((-w / 2 - 0.1, -0.1), (0, -0.1 - rh), (w / 2 + 0.1, -0.1)), role=ACCENT)]
    dx = [-w / 4, 0, w / 4][door]
    parts.append(P(rect(dx, 0.6, 0.22, 0.4), role=DETAIL))
    xs = [x for x in np.linspace(-w / 2 + 0.15, w / 2 - 0.15, 4) if abs(x - dx) > 0.2][: n_win + 1]
    for x in xs:
        parts.append(P(rect(x, 0.2, 0.16, 0.16), role=DETAIL, minor=True))
    if chimney:
        parts.append(P(rect(w / 4, -0.25 - rh / 2, 0.12, 0.3 + top * 0), role=ACCENT, minor=True))
    return parts


def tree(u, a):
    tw, cs = lerp(u[0], 0.1, 0.25), lerp(u[1], 0.45, 0.7)
    crown, branches, fruit = a
    parts = [P(rect(0, 0.55, tw, 0.8), role=ACCENT)]
    if crown == 0:
        parts.append(P(ellipse(0, -0.25, cs, cs * 0.9)))
    elif crown == 1:
        parts.append(P(poly((-cs, 0.2), (0, -0.95), (cs, 0.2))))
    else:
        parts.append(P(np.concatenate([ellipse(-cs / 2, -0.2, cs / 2, cs / 2, 12, np.pi / 2, 3 * np.pi / 2),
                                       ellipse(0, -0.5, cs / 2, cs / 2, 12, np.pi, 2 * np.pi),
                                       ellipse(cs / 2, -0.2, cs / 2, cs / 2, 12, -np.pi / 2, np.pi / 2)])))
    for i in range(branches):
        s = -1 if i % 2 == 0 else 1
        parts.append(L((0, 0.45 - 0.12 * i), (s * 0.3, 0.25 - 0.12 * i), minor=True))
    for i in range(fruit * 2):
        ang = 0.7 + i * 2.1
        parts.append(P(ellipse(0.5 * cs * np.cos(ang), -0.25 + 0.5 * cs * np.sin(ang), 0.06, 0.06, 10), role=DETAIL, minor=True))
    return parts


def cup(u, a):
    h, taper = lerp(u[0], 0.9, 1.4), lerp(u[1], 0.0, 0.2)
    handle, stripes, saucer = a
    top, bot = -h / 2, h / 2
    parts = [P(poly((-0.45, top), (0.45, top), (0.45 - taper, bot), (-0.45 + taper, bot)))]
    if handle:
        parts.append(P(ellipse(0.55, 0, 0.22, h / 4, 16, -np.pi / 2, np.pi / 2), closed=False, role=DETAIL))
    for i in range(stripes):
        y = top + h * (0.3 + 0.2 * i)
        parts.append(L((-0.45 + taper * (y - top) / h, y), (0.45 - taper * (y - top) / h, y), minor=True))
    if saucer:
        parts.append(P(ellipse(0, bot + 0.06, 0.75, 0.1, 20), role=ACCENT, minor=True))
    return parts


def key(u, a):
    sl, hs = lerp(u[0], 0.9, 1.3), lerp(u[1], 0.25, 0.4)
    teeth, head, hole = a
    hx = -0.7
    parts = [P(ellipse(hx, 0, hs, hs) if head == 0 else rect(hx, 0, 2 * hs, 2 * hs))]
    parts.append(P(rect(hx + hs + sl / 2, 0, sl, 0.12), role=BODY))
    x0 = hx + hs + sl
    for i in range(teeth + 2):
        x = x0 - 0.08 - 0.15 * i
        parts.append(P(rect(x, 0.12, 0.08, 0.14 + 0.05 * (i % 2)), role=BODY, minor=True))
    if hole:
        parts.append(P(ellipse(hx, 0, hs / 3, hs / 3, 14), role=DETAIL, minor=True))
    return parts


def fish(u, a):
    bl, bh = lerp(u[0], 0.6, 0.85), lerp(u[1], 0.3, 0.5)
    tail, fins, stripes = a
    parts = [P(ellipse(0, 0, bl, bh))]
    tx = bl - 0.05
    if tail == 0:
        parts.append(P(poly((tx, 0), (tx + 0.35, -0.35), (tx + 0.22, 0), (tx + 0.35, 0.35)), role=ACCENT))
    else:
        parts.append(P(poly((tx, 0), (tx + 0.35, -0.3), (tx + 0.35, 0.3)), role=ACCENT))
    parts.append(P(poly((-0.1, -bh + 0.02), (0.15, -bh - 0.25), (0.3, -bh + 0.1)), role=ACCENT, minor=True))
    if fins:
        parts.append(P(poly((-0.05, bh - 0.02), (0.15, bh + 0.2), (0.25, bh - 0.1)), role=ACCENT, minor=True))
    parts.append(P(ellipse(-bl * 0.6, -bh * 0.25, 0.06, 0.06, 10), role=DETAIL, minor=True))
    for i in range(stripes):
        x = -0.1 + 0.25 * i
        parts.append(L((x, -bh * 0.9), (x + 0.05, bh * 0.9), minor=True))
    return parts


def umbrella(u, a):
    cw, sl = lerp(u[0], 0.75, 0.95), lerp(u[1], 0.6, 0.9)
    ribs, hook, tip = a
    canopy = np.concatenate([ellipse(0, -0.1, cw, 0.6, 24, np.pi, 2 * np.pi), [[cw, -0.1], [-cw, -0.1]]])
    parts = [P(canopy)]
    for i in range(1, ribs + 3):
        x = -cw + 2 * cw * i / (ribs + 3)
        parts.append(L((0, -0.7), (x, -0.1), minor=True))
    parts.append(L((0, -0.1), (0, -0.1 + sl)))
    if hook:
        parts.append(P(ellipse(-0.12, -0.1 + sl, 0.12, 0.12, 12, 0, np.pi), closed=False, role=DETAIL))
    if tip:
        parts.append(L((0, -0.7), (0, -0.85), minor=True))
    return parts


def lamp(u, a):
    sw, ph = lerp(u[0], 0.5, 0.8), lerp(u[1], 0.6, 1.0)
    shade, base, chain = a
    if shade == 0:
        parts = [P(poly((-sw / 2, -0.85), (sw / 2, -0.85), (sw, -0.35), (-sw, -0.35)))]
    else:
        parts = [P(np.concatenate([ellipse(0, -0.35, sw, 0.5, 20, np.pi, 2 * np.pi), [[sw, -0.35]]]))]
    parts.append(L((0, -0.35), (0, -0.35 + ph)))
    y = -0.35 + ph
    parts.append(P(ellipse(0, y, 0.4, 0.1, 20) if base == 0 else rect(0, y, 0.7, 0.15), role=ACCENT))
    if chain:
        parts.append(L((sw * 0.5, -0.35), (sw * 0.5, 0.0), minor=True))
    return parts


def bottle(u, a):
    bw, nl = lerp(u[0], 0.35, 0.55), lerp(u[1], 0.3, 0.6)
    label, cap, shoulder = a
    top = -0.2
    if shoulder == 0:
        body = [(-bw, 0.9), (-bw, top), (-0.12, top - 0.25), (-0.12, top - 0.25 - nl),
                (0.12, top - 0.25 - nl), (0.12, top - 0.25), (bw, top), (bw, 0.9)]
    else:
        body = np.concatenate([[[-bw, 0.9]], ellipse(0, top, bw, 0.3, 12, np.pi, 1.5 * np.pi),
                               [[-0.12, top - 0.3 - nl], [0.12, top - 0.3 - nl]],
                               ellipse(0, top, bw, 0.3, 12, 1.5 * np.pi, 2 * np.pi), [[bw, 0.9]]])
    parts = [P(body)]
    if label:
        parts.append(P(rect(0, 0.35, 2 * bw, 0.35), role=ACCENT, minor=True))
    if cap:
        parts.append(P(rect(0, top - 0.3 - nl, 0.3, 0.12), role=DETAIL))
    return parts


def flower(u, a):
    sl, ps = lerp(u[0], 0.8, 1.1), lerp(u[1], 0.18, 0.28)
    petals, leaves, ring = a
    cy = 0.85 - sl
    parts = [L((0, cy), (0, 0.9), role=DETAIL)]
    k = petals + 4
    for i in range(k):
        ang = 2 * np.pi * i / k
        petal = ellipse(ps * 1.3, 0, ps, ps * 0.55, 14)
        c, s = np.cos(ang), np.sin(ang)
        parts.append(P(petal @ np.array([[c, s], [-s, c]]) + [0, cy]))
    parts.append(P(ellipse(0, cy, ps * 0.8, ps * 0.8, 16), role=ACCENT))
    for i in range(leaves):
        s = -1 if i == 0 else 1
        parts.append(P(ellipse(s * 0.2, 0.55, 0.2, 0.07, 14), role=ACCENT, minor=True))
    if ring:
        parts.append(P(ellipse(0, cy, ps * 0.4, ps * 0.4, 12), closed=True, role=DETAIL, minor=True))
    return parts


def wheel(u, a):
    r, hub = lerp(u[0], 0.7, 0.9), lerp(u[1], 0.1, 0.25)
    spokes, ring, tread = a
    parts = [P(ellipse(0, 0, r, r, 36)), P(ellipse(0, 0, r * 0.8, r * 0.8, 32), role=ACCENT)]
    k = spokes + 3
    for i in range(k):
        ang = 2 * np.pi * i / k
        parts.append(L((0, 0), (r * 0.8 * np.cos(ang), r * 0.8 * np.sin(ang))))
    parts.append(P(ellipse(0, 0, hub, hub, 14), role=BODY))
    if ring:
        parts.append(P(ellipse(0, 0, r * 0.55, r * 0.55, 28), role=DETAIL, minor=True))
    if tread:
        for i in range(12):
            ang = 2 * np.pi * i / 12
            parts.append(L((r * 0.9 * np.cos(ang), r * 0.9 * np.sin(ang)), (r * np.cos(ang), r * np.sin(ang)), minor=True))
    return parts


def car(u, a):
    ln, ch = lerp(u[0], 1.5, 1.9), lerp(u[1], 0.25, 0.45)
    windows, hubcap, spoiler = a
    x0 = ln / 2
    parts = [P(rect(0, 0.15, ln, 0.4)),
             P(poly((-x0 * 0.55, -0.05), (-x0 * 0.35, -0.05 - ch), (x0 * 0.35, -0.05 - ch), (x0 * 0.6, -0.05)), role=ACCENT)]
    for s in (-1, 1):
        parts.append(P(ellipse(s * x0 * 0.6, 0.38, 0.2, 0.2, 18), role=DETAIL))
        if hubcap:
            parts.append(P(ellipse(s * x0 * 0.6, 0.38, 0.08, 0.08, 10), role=ACCENT, minor=True))
    for i in range(windows + 1):
        cx = (-0.2 if windows else 0) + 0.4 * i
        parts.append(P(rect(cx * x0 * 0.6, -0.05 - ch / 2, 0.28, ch * 0.6), role=DETAIL, minor=True))
    if spoiler:
        parts.append(L((-x0, -0.05), (-x0 - 0.05, -0.2), (-x0 + 0.2, -0.2), minor=True))
    return parts


def boat(u, a):
    ln, mh = lerp(u[0], 1.3, 1.7), lerp(u[1], 0.7, 1.0)
    sails, ports, flag = a
    parts = [P(poly((-ln / 2, 0.3), (ln / 2, 0.3), (ln / 2 - 0.3, 0.65), (-ln / 2 + 0.3, 0.65)))]
    parts.append(L((0, 0.3), (0, 0.3 - mh)))
    parts.append(P(poly((0.05, 0.3 - mh), (0.05, 0.2), (0.55, 0.2)), role=ACCENT))
    if sails:
        parts.append(P(poly((-0.05, 0.3 - mh + 0.1), (-0.05, 0.2), (-0.5, 0.2)), role=ACCENT))
    for i in range(ports):
        parts.append(P(ellipse(-0.3 + 0.3 * i, 0.45, 0.06, 0.06, 10), role=DETAIL, minor=True))
    if flag:
        parts.append(P(poly((0, 0.3 - mh), (0.25, 0.3 - mh + 0.08), (0, 0.3 - mh + 0.16)), role=DETAIL, minor=True))
    return parts


def chair(u, a):
    sw, bh = lerp(u[0], 0.7, 1.0), lerp(u[1], 0.6, 0.9)
    slats, arm, legs = a
    parts = [P(rect(0, 0.15, sw, 0.12)), P(rect(-sw / 2 + 0.05, 0.15 - bh / 2, 0.1, bh), role=ACCENT),
             P(rect(sw / 2 - 0.05, 0.15 - bh / 2, 0.1, bh), role=ACCENT),
             P(rect(0, 0.15 - bh, sw, 0.1), role=ACCENT)]
    for i in range(slats + 1):
        x = -sw / 2 + sw * (i + 1) / (slats + 2)
        parts.append(L((x, 0.1 - bh), (x, 0.1), minor=True))
    spread = 0.15 * legs
    parts.append(L((-sw / 2 + 0.05, 0.2), (-sw / 2 - spread, 0.9)))
    parts.append(L((sw / 2 - 0.05, 0.2), (sw / 2 + spread, 0.9)))
    if arm:
        parts.append(L((-sw / 2, -0.15), (-sw / 2 - 0.15, -0.15), (-sw / 2 - 0.15, 0.15), minor=True))
        parts.append(L((sw / 2, -0.15), (sw / 2 + 0.15, -0.15), (sw / 2 + 0.15, 0.15), minor=True))
    return parts


def table(u, a):
    tw, th = lerp(u[0], 1.4, 1.8), lerp(u[1], 0.6, 0.9)
    legs, drawer, cloth = a
    parts = [P(rect(0, -0.3, tw, 0.14))]
    n = legs + 2
    for i in range(n):
        x = -tw / 2 + 0.1 + (tw - 0.2) * i / (n - 1)
        parts.append(P(rect(x, -0.23 + th / 2, 0.08, th), role=ACCENT))
    if drawer:
        parts.append(P(rect(0, -0.13, tw * 0.4, 0.18), role=DETAIL, minor=True))
    if cloth:
        parts.append(P(poly((-tw / 2 - 0.05, -0.37), (tw / 2 + 0.05, -0.37), (tw / 2 + 0.05, -0.1),
                            (-tw / 2 - 0.05, -0.1)), role=ACCENT, minor=True))
    return parts


def star_(u, a):
    ri = lerp(u[0], 0.35, 0.5)
    sc = lerp(u[1], 0.8, 0.95)
    points, circle, tail = a
    parts = [P(star(0, 0, sc, sc * ri, points + 5))]
    if circle:
        parts.append(P(ellipse(0, 0, sc * ri * 0.6, sc * ri * 0.6, 16), role=ACCENT, minor=True))
    for i in range(tail):
        parts.append(L((-0.5, 0.5 + 0.12 * i), (-0.95, 0.95 + 0.12 * i - 0.3), minor=True))
    return parts


def heart(u, a):
    w, d = lerp(u[0], 0.8, 1.0), lerp(u[1], 0.8, 1.0)
    arrow, inner, dots = a
    t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    pts = np.stack([x / 17 * w, y / 17 * d + 0.1], 1)
    parts = [P(pts)]
    if arrow:
        parts.append(L((-0.95, 0.5), (0.95, -0.5)))
        parts.append(P(poly((0.95, -0.5), (0.75, -0.5), (0.85, -0.35)), role=DETAIL, minor=True))
    if inner:
        parts.append(P(pts * 0.5 + [0, 0.03], role=ACCENT, minor=True))
    for i in range(dots):
        parts.append(P(ellipse(-0.4 + 0.8 * i, -0.3, 0.07, 0.07, 10), role=DETAIL, minor=True))
    return parts


def sun(u, a):
    r, rl = lerp(u[0], 0.35, 0.5), lerp(u[1], 0.25, 0.4)
    rays, face, style = a
    parts = [P(ellipse(0, 0, r, r, 32))]
    k = 6 + 2 * rays
    for i in range(k):
        ang = 2 * np.pi * i / k
        c, s = np.cos(ang), np.sin(ang)
        if style == 0:
            parts.append(L(((r + 0.08) * c, (r + 0.08) * s), ((r + rl) * c, (r + rl) * s)))
        else:
            parts.append(P(poly(((r + 0.05) * c - 0.08 * s, (r + 0.05) * s + 0.08 * c), ((r + rl) * c, (r + rl) * s),
                                ((r + 0.05) * c + 0.08 * s, (r + 0.05) * s - 0.08 * c)), role=ACCENT))
    if face:
        parts.append(P(ellipse(-r / 3, -r / 4, 0.04, 0.04, 8), role=DETAIL, minor=True))
        parts.append(P(ellipse(r / 3, -r / 4, 0.04, 0.04, 8), role=DETAIL, minor=True))
        parts.append(P(ellipse(0, r / 6, r / 2, r / 3, 12, 0.2, np.pi - 0.2), closed=False, role=DETAIL, minor=True))
    return parts


def cloud(u, a):
    w, h = lerp(u[0], 0.8, 1.0), lerp(u[1], 0.35, 0.5)
    bumps, rain, bolt = a
    k = bumps + 3
    pts = [ellipse(-w + 2 * w * (i + 0.5) / k, -0.2 - 0.1 * (i % 2), w / k + 0.08, h, 10, np.pi, 2 * np.pi) for i in range(k)]
    outline = np.concatenate(pts + [[[w + 0.05, 0.1], [-w - 0.05, 0.1]]])
    parts = [P(outline)]
    for i in range(rain * 3):
        x = -0.6 + 0.6 * (i % 3) + 0.1 * (i // 3)
        parts.append(L((x, 0.3 + 0.1 * (i // 3)), (x - 0.08, 0.5 + 0.1 * (i // 3)), minor=True))
    if bolt:
        parts.append(P(poly((0.1, 0.15), (-0.1, 0.5), (0.05, 0.5), (-0.1, 0.9), (0.25, 0.4), (0.08, 0.4), (0.2, 0.15)), role=ACCENT))
    return parts


def mushroom(u, a):
    cw, sh = lerp(u[0], 0.7, 0.95), lerp(u[1], 0.5, 0.8)
    spots, ring, cap = a
    if cap == 0:
        parts = [P(np.concatenate([ellipse(0, 0, cw, 0.6, 24, np.pi, 2 * np.pi), [[cw, 0.05], [-cw, 0.05]]]))]
    else:
        parts = [P(np.concatenate([ellipse(0, 0, cw, 0.3, 24, np.pi, 2 * np.pi), [[cw, 0.05], [-cw, 0.05]]]))]
    parts.append(P(rect(0, 0.05 + sh / 2, 0.3, sh), role=ACCENT))
    for i in range(spots + 1):
        parts.append(P(ellipse(-0.4 + 0.3 * i, -0.2 - 0.08 * (i % 2) * (1 - cap), 0.08, 0.06, 10), role=DETAIL, minor=True))
    if ring:
        parts.append(L((-0.2, 0.2), (0.2, 0.2), minor=True))
    return parts


def rocket(u, a):
    bw, bl = lerp(u[0], 0.25, 0.4), lerp(u[1], 1.0, 1.4)
    fins, windows, flame = a
    top, bot = -bl / 2 - 0.1, bl / 2
    parts = [P(np.concatenate([[[-bw, bot]], ellipse(0, top + 0.5, bw, 0.5, 16, np.pi, 2 * np.pi), [[bw, bot]]]))]
    parts.append(P(poly((-bw, bot - 0.3), (-bw - 0.25, bot + 0.1), (-bw, bot)), role=ACCENT))
    parts.append(P(poly((bw, bot - 0.3), (bw + 0.25, bot + 0.1), (bw, bot)), role=ACCENT))
    if fins:
        parts.append(L((0, bot - 0.25), (0, bot + 0.12), minor=True))
    for i in range(windows + 1):
        parts.append(P(ellipse(0, top + 0.5 + 0.3 * i, bw * 0.45, bw * 0.45, 14), role=DETAIL, minor=True))
    if flame:
        parts.append(P(poly((-bw * 0.7, bot), (0, bot + 0.35), (bw * 0.7, bot)), role=ACCENT, minor=True))
    return parts


def clock(u, a):
    r, hl = lerp(u[0], 0.65, 0.85), lerp(u[1], 0.5, 0.75)
    time, ticks, alarm = a
    parts = [P(ellipse(0, 0.05, r, r, 36))]
    ang = [(-np.pi / 2, 0.0), (-np.pi / 2, np.pi * 0.75), (np.pi / 6, -np.pi * 0.3)][time]
    parts.append(L((0, 0.05), (r * hl * np.cos(ang[0]), 0.05 + r * hl * np.sin(ang[0]))))
    parts.append(L((0, 0.05), (r * 0.45 * np.cos(ang[1]), 0.05 + r * 0.45 * np.sin(ang[1]))))
    n = 4 if ticks == 0 else 12
    for i in range(n):
        t = 2 * np.pi * i / n
        parts.append(L((0.85 * r * np.cos(t), 0.05 + 0.85 * r * np.sin(t)), (r * np.cos(t), 0.05 + r * np.sin(t)), minor=True))
    if alarm:
        parts.append(P(ellipse(-0.5 * r, 0.05 - r * 0.95, 0.22, 0.12, 14), role=ACCENT))
        parts.append(P(ellipse(0.5 * r, 0.05 - r * 0.95, 0.22, 0.12, 14), role=ACCENT))
    return parts


def guitar(u, a):
    bs, nl = lerp(u[0], 0.35, 0.45), lerp(u[1], 0.6, 0.8)
    hole, strings, pegs = a
    body = np.concatenate([ellipse(0, 0.5, bs * 1.25, bs * 1.05, 20, -np.pi / 3, 4 * np.pi / 3),
                           ellipse(0, 0.05, bs, bs * 0.8, 16, 2 * np.pi / 3 + np.pi, 2 * np.pi / 3 + 2 * np.pi - np.pi / 3)])
    parts = [P(body)]
    top = 0.05 - bs * 0.6 - nl
    parts.append(P(rect(0, top + nl / 2, 0.12, nl), role=ACCENT))
    parts.append(P(rect(0, top - 0.1, 0.2, 0.22), role=ACCENT))
    if hole:
        parts.append(P(ellipse(0, 0.3, 0.12, 0.12, 14), role=DETAIL, minor=True))
    for i in range(2 + 2 * strings):
        x = -0.04 + 0.08 * i / (1 + 2 * strings)
        parts.append(L((x, top), (x, 0.75), minor=True))
    if pegs:
        for s in (-1, 1):
            parts.append(L((s * 0.1, top - 0.15), (s * 0.18, top - 0.15), minor=True))
    return parts


def hammer(u, a):
    hl, hw = lerp(u[0], 1.1, 1.5), lerp(u[1], 0.6, 0.9)
    head, bands, knob = a
    parts = [P(rect(0, -0.45 + hl / 2 + 0.1, 0.14, hl), role=ACCENT)]
    if head == 0:
        parts.append(P(poly((-hw / 2, -0.6), (hw / 2, -0.6), (hw / 2, -0.4), (-hw / 2, -0.4))))
    else:
        parts.append(P(poly((-hw / 2, -0.55), (0.1, -0.62), (hw / 2, -0.62), (hw / 2, -0.38), (0.1, -0.38),
                            (-hw / 2 - 0.05, -0.3), (-hw / 2 + 0.1, -0.5))))
    for i in range(bands):
        y = 0.4 + 0.12 * i
        parts.append(L((-0.07, y), (0.07, y), minor=True))
    if knob:
        parts.append(P(ellipse(0, -0.45 + hl + 0.12, 0.1, 0.06, 10), role=DETAIL, minor=True))
    return parts


def kite(u, a):
    kw, kh = lerp(u[0], 0.45, 0.65), lerp(u[1], 0.9, 1.2)
    bows, spars, shape = a
    top = -0.9
    cross = top + kh * (0.3 if shape == 0 else 0.5)
    parts = [P(poly((0, top), (kw, cross), (0, top + kh), (-kw, cross)))]
    if spars:
        parts.append(L((0, top), (0, top + kh), minor=True))
        parts.append(L((-kw, cross), (kw, cross), minor=True))
    tail = np.stack([np.sin(np.linspace(0, 3, 12)) * 0.15, np.linspace(top + kh, 0.95, 12)], 1)
    parts.append(Part(tail, False, DETAIL, False))
    for i in range(bows + 2):
        j = 2 + 3 * i
        if j < len(tail):
            x, y = tail[j]
            parts.append(P(poly((x - 0.1, y - 0.05), (x + 0.1, y + 0.05), (x + 0.1, y - 0.05), (x - 0.1, y + 0.05)), role=ACCENT, minor=True))
    return parts


def bell(u, a):
    bw, bh = lerp(u[0], 0.6, 0.85), lerp(u[1], 0.8, 1.1)
    clapper, loop, bands = a
    top, bot = -bh / 2, bh / 2
    body = np.concatenate([[[-bw, bot]], ellipse(0, top + 0.3, bw * 0.55, 0.35, 16, np.pi, 2 * np.pi), [[bw, bot]]])
    parts = [P(body), P(rect(0, bot + 0.03, 2 * bw + 0.1, 0.08), role=ACCENT)]
    if clapper:
        parts.append(P(ellipse(0, bot + 0.15, 0.1, 0.1, 12), role=DETAIL))
    if loop:
        parts.append(P(ellipse(0, top - 0.08, 0.1, 0.1, 12), closed=True, role=DETAIL, minor=True))
    for i in range(bands):
        y = top + bh * (0.45 + 0.18 * i)
        parts.append(L((-bw * (0.6 + 0.3 * (y - top) / bh), y), (bw * (0.6 + 0.3 * (y - top) / bh), y), minor=True))
    return parts


def candle(u, a):
    cw, ch = lerp(u[0], 0.25, 0.4), lerp(u[1], 0.9, 1.3)
    flame, drips, holder = a
    top = 0.75 - ch
    parts = [P(rect(0, top + ch / 2, 2 * cw, ch))]
    parts.append(L((0, top), (0, top - 0.1)))
    if flame:
        parts.append(P(np.concatenate([[[0, top - 0.5]], ellipse(0, top - 0.2, 0.1, 0.12, 12, -0.3, np.pi + 0.3)]), role=ACCENT))
    for i in range(drips):
        x = -cw * 0.6 + cw * 1.2 * i
        parts.append(P(ellipse(x, top + 0.15, 0.05, 0.15, 10), role=DETAIL, minor=True))
    if holder:
        parts.append(P(ellipse(0, 0.8, cw + 0.35, 0.1, 20), role=ACCENT, minor=True))
    return parts


def glasses(u, a):
    lw, br = lerp(u[0], 0.3, 0.42), lerp(u[1], 0.1, 0.25)
    shape, bridge, temples = a
    parts = []
    for s in (-1, 1):
        cx = s * (br / 2 + lw)
        parts.append(P(ellipse(cx, 0, lw, lw * 0.85, 24) if shape == 0 else rect(cx, 0, 2 * lw, 1.5 * lw)))
        if temples:
            parts.append(L((cx + s * lw, -lw * 0.5), (cx + s * (lw + 0.2), -lw * 0.7), (cx + s * (lw + 0.25), 0.0), minor=True))
    parts.append(L((-br / 2, -0.05), (0, -0.12), (br / 2, -0.05)))
    if bridge:
        parts.append(L((-br / 2, -lw * 0.7), (br / 2, -lw * 0.7), minor=True))
    return parts


def ladder(u, a):
    lw, lh = lerp(u[0], 0.5, 0.8), lerp(u[1], 1.4, 1.8)
    rungs, feet, top = a
    parts = [P(rect(-lw / 2, 0, 0.08, lh), role=ACCENT), P(rect(lw / 2, 0, 0.08, lh), role=ACCENT)]
    n = rungs + 3
    for i in range(n):
        y = -lh / 2 + lh * (i + 0.5) / n
        parts.append(L((-lw / 2, y), (lw / 2, y), minor=i % 2 == 1))
    if feet:
        parts.append(L((-lw / 2 - 0.12, lh / 2), (-lw / 2 + 0.06, lh / 2), minor=True))
        parts.append(L((lw / 2 - 0.06, lh / 2), (lw / 2 + 0.12, lh / 2), minor=True))
    if top:
        parts.append(P(rect(0, -lh / 2 - 0.05, lw + 0.2, 0.1), role=BODY, minor=True))
    return parts


def trophy(u, a):
    cw, sh = lerp(u[0], 0.4, 0.6), lerp(u[1], 0.2, 0.45)
    handles, tiers, emblem = a
    cup_ = np.concatenate([[[-cw, -0.7]], [[cw, -0.7]], ellipse(0, -0.7, cw, 0.6, 16, 0, np.pi)])
    parts = [P(cup_)]
    parts.append(P(rect(0, -0.1 + sh / 2, 0.1, sh), role=ACCENT))
    y = -0.1 + sh
    for i in range(tiers + 1):
        parts.append(P(rect(0, y + 0.08 + 0.16 * i, 0.5 + 0.2 * i, 0.16), role=ACCENT))
    if handles:
        for s in (-1, 1):
            parts.append(P(ellipse(s * cw, -0.5, 0.2, 0.18, 12, -np.pi / 2 if s > 0 else np.pi / 2,
                                   np.pi / 2 if s > 0 else 3 * np.pi / 2), closed=False, role=DETAIL))
    if emblem:
        parts.append(P(star(0, -0.45, 0.15, 0.07, 5), role=DETAIL, minor=True))
    return parts


def bucket(u, a):
    tw, h = lerp(u[0], 0.7, 0.9), lerp(u[1], 0.9, 1.2)
    handle, bands, spill = a
    top, bot = 0.7 - h, 0.7
    parts = [P(poly((-tw, top), (tw, top), (tw * 0.75, bot), (-tw * 0.75, bot)))]
    parts.append(P(ellipse(0, top, tw, 0.1, 24), role=ACCENT))
    if handle:
        parts.append(P(ellipse(0, top, tw, 0.55, 20, np.pi, 2 * np.pi), closed=False, role=DETAIL))
    for i in range(bands):
        y = top + h * (0.35 + 0.3 * i)
        f = tw - 0.25 * tw * (y - top) / h
        parts.append(L((-f, y), (f, y), minor=True))
    if spill:
        parts.append(P(ellipse(tw + 0.1, top + 0.25, 0.06, 0.1, 10), role=DETAIL, minor=True))
    return parts


def teapot(u, a):
    bw, bh = lerp(u[0], 0.5, 0.65), lerp(u[1], 0.4, 0.55)
    knob, handle, spout = a
    parts = [P(ellipse(0, 0.15, bw, bh, 28))]
    parts.append(P(ellipse(0, 0.15 - bh, bw * 0.5, 0.1, 16), role=ACCENT))
    if knob:
        parts.append(P(ellipse(0, 0.15 - bh - 0.15, 0.07, 0.07, 10), role=DETAIL, minor=True))
    if handle == 0:
        parts.append(P(ellipse(-bw, 0.15, 0.25, bh * 0.5, 14, np.pi / 2, 3 * np.pi / 2), closed=False, role=DETAIL))
    else:
        parts.append(L((-bw + 0.05, 0.15 - bh * 0.5), (-bw - 0.25, 0.15 - bh * 0.5), (-bw - 0.25, 0.15 + bh * 0.4), (-bw + 0.1, 0.15 + bh * 0.4)))
    sy = 0.15 + (0.1 if spout == 0 else -0.05)
    parts.append(P(poly((bw - 0.05, sy), (bw + 0.35, sy - 0.35), (bw + 0.4, sy - 0.3), (bw - 0.02, sy + 0.15)), role=BODY))
    return parts


def apple(u, a):
    w, h = lerp(u[0], 0.6, 0.8), lerp(u[1], 0.6, 0.8)
    leaf, stem, bite = a
    t = np.linspace(0, 2 * np.pi, 36, endpoint=False)
    r = 1 - 0.12 * np.cos(t + np.pi / 2) ** 8 * (np.sin(t) < 0)
    pts = np.stack([w * r * np.cos(t), 0.1 + h * r * np.sin(t) - 0.15 * np.exp(-((t - 1.5 * np.pi) ** 2) / 0.05)], 1)
    if bite:
        d = np.hypot(pts[:, 0] - w, pts[:, 1] - 0.1)
        pts[d < 0.3, 0] = w - 0.3 + 0.0
    parts = [P(pts)]
    if stem:
        parts.append(L((0, 0.1 - h + 0.05), (0.05, 0.1 - h - 0.2)))
    if leaf:
        parts.append(P(ellipse(0.2, 0.1 - h - 0.1, 0.16, 0.06, 12), role=ACCENT, minor=True))
    return parts


def balloon(u, a):
    w, h = lerp(u[0], 0.4, 0.55), lerp(u[1], 0.5, 0.65)
    wave, shine, count = a
    parts = []
    offsets = [0.0] if count == 0 else [-0.3, 0.3]
    for j, dx in enumerate(offsets):
        cy = -0.25 - 0.1 * j
        parts.append(P(ellipse(dx, cy, w, h, 28), role=BODY if j == 0 else ACCENT))
        parts.append(P(poly((dx, cy + h), (dx - 0.06, cy + h + 0.08), (dx + 0.06, cy + h + 0.08)), role=DETAIL, minor=True))
        y = np.linspace(cy + h + 0.08, 0.95, 12)
        x = dx * (1 - (y - y[0]) / (0.95 - y[0])) + (0.07 * np.sin(np.linspace(0, 4 * np.pi, 12)) if wave else 0)
        parts.append(Part(np.stack([x, y], 1), False, DETAIL, False))
        if shine:
            parts.append(P(ellipse(dx - w * 0.4, cy - h * 0.4, 0.06, 0.1, 10), role=ACCENT, minor=True))
    return parts


def envelope(u, a):
    w, h = lerp(u[0], 1.5, 1.8), lerp(u[1], 0.9, 1.1)
    flap, stamp, seal = a
    parts = [P(rect(0, 0.1, w, h))]
    top = 0.1 - h / 2
    if flap == 0:
        parts.append(L((-w / 2, top), (0, top + h * 0.55), (w / 2, top)))
    else:
        parts.append(P(poly((-w / 2, top), (0, top - h * 0.45), (w / 2, top)), role=ACCENT))
    if stamp:
        parts.append(P(rect(w / 2 - 0.2, top + 0.18, 0.2, 0.24), role=ACCENT, minor=True))
    if seal:
        parts.append(P(ellipse(0, top + h * 0.5 * (1 - flap) + 0.02, 0.1, 0.1, 12), role=DETAIL, minor=True))
    return parts


def shoe(u, a):
    ln, hh = lerp(u[0], 1.5, 1.8), lerp(u[1], 0.3, 0.55)
    laces, heel, stripe = a
    x0, x1 = -ln / 2, ln / 2
    pts = np.concatenate([[[x0, 0.35], [x0, -hh - 0.1], [x0 + 0.35, -hh - 0.1], [x0 + 0.45, -0.1]],
                          ellipse(x1 - 0.4, 0.1, 0.4, 0.25, 12, -np.pi / 2, np.pi / 2), [[x0, 0.35]]])
    parts = [P(pts), P(rect(0, 0.4, ln, 0.1), role=ACCENT)]
    for i in range(laces + 2):
        x = x0 + 0.45 + 0.12 * i
        parts.append(L((x, -0.1 + 0.04 * i - 0.05), (x + 0.1, 0.0 + 0.04 * i), minor=True))
    if heel:
        parts.append(P(rect(x0 + 0.15, 0.55, 0.22, 0.2), role=ACCENT))
    if stripe:
        parts.append(L((x0 + 0.1, 0.25), (x0 + 0.6, -0.05), (x1 - 0.3, 0.25), minor=True))
    return parts


def hat(u, a):
    bw, ch = lerp(u[0], 0.8, 1.0), lerp(u[1], 0.5, 0.8)
    crown, band, feather = a
    parts = [P(ellipse(0, 0.3, bw, 0.14, 28), role=ACCENT)]
    cw = bw * 0.55
    if crown == 0:
        parts.append(P(rect(0, 0.3 - ch / 2, 2 * cw, ch)))
    else:
        parts.append(P(np.concatenate([[[-cw, 0.3]], ellipse(0, 0.3 - ch * 0.4, cw, ch * 0.6, 16, np.pi, 2 * np.pi), [[cw, 0.3]]])))
    if band:
        parts.append(P(rect(0, 0.22, 2 * cw, 0.1), role=DETAIL, minor=True))
    if feather:
        parts.append(P(ellipse(cw + 0.05, 0.3 - ch * 0.6, 0.06, 0.3, 12), role=ACCENT, minor=True))
    return parts


def fork_(u, a):
    hl, hw = lerp(u[0], 0.9, 1.2), lerp(u[1], 0.25, 0.38)
    tines, neck, hole = a
    parts = [P(rect(0, 0.1 + hl / 2 - 0.2, 0.14, hl), role=ACCENT)]
    parts.append(P(poly((-hw, -0.45), (hw, -0.45), (0.07 + 0.05 * neck, -0.1), (-0.07 - 0.05 * neck, -0.1))))
    k = tines + 2
    for i in range(k):
        x = -hw + 2 * hw * (i + 0.5) / k
        parts.append(L((x, -0.45), (x, -0.9)))
    if hole:
        parts.append(P(ellipse(0, 0.1 + hl - 0.3, 0.04, 0.04, 8), role=DETAIL, minor=True))
    return parts


def _t(name, attrs, fn):
    return ClassTemplate(name, tuple(attrs), fn)


TEMPLATES: tuple[ClassTemplate, ...] = (
    _t("apple", [("leaf", 2), ("stem", 2), ("bite", 2)], apple),
    _t("balloon", [("wavy_string", 2), ("highlight", 2), ("count", 2)], balloon),
    _t("bell", [("clapper", 2), ("loop", 2), ("bands", 3)], bell),
    _t("boat", [("two_sails", 2), ("portholes", 4), ("flag", 2)], boat),
    _t("bottle", [("label", 2), ("cap", 2), ("round_shoulder", 2)], bottle),
    _t("bucket", [("handle", 2), ("bands", 3), ("drop", 2)], bucket),
    _t("candle", [("flame", 2), ("drips", 3), ("holder", 2)], candle),
    _t("car", [("two_windows", 2), ("hubcaps", 2), ("spoiler", 2)], car),
    _t("chair", [("slats", 3), ("armrests", 2), ("splayed_legs", 2)], chair),
    _t("clock", [("time", 3), ("twelve_ticks", 2), ("alarm_bells", 2)], clock),
    _t("cloud", [("bumps", 3), ("rain", 3), ("lightning", 2)], cloud),
    _t("cup", [("handle", 2), ("stripes", 3), ("saucer", 2)], cup),
    _t("envelope", [("open_flap", 2), ("stamp", 2), ("seal", 2)], envelope),
    _t("fish", [("round_tail", 2), ("lower_fin", 2), ("stripes", 3)], fish),
    _t("flower", [("petals", 4), ("leaves", 3), ("ring", 2)], flower),
    _t("fork", [("tines", 3), ("wide_neck", 2), ("hole", 2)], fork_),
    _t("glasses", [("square_lenses", 2), ("double_bridge", 2), ("temples", 2)], glasses),
    _t("guitar", [("sound_hole", 2), ("strings", 3), ("pegs", 2)], guitar),
    _t("hammer", [("claw", 2), ("grip_bands", 3), ("knob", 2)], hammer),
    _t("hat", [("round_crown", 2), ("band", 2), ("feather", 2)], hat),
    _t("heart", [("arrow", 2), ("inner_heart", 2), ("dots", 3)], heart),
    _t("house", [("windows", 3), ("chimney", 2), ("door_position", 3)], house),
    _t("key", [("teeth", 3), ("square_head", 2), ("hole", 2)], key),
    _t("kite", [("bows", 3), ("spars", 2), ("low_cross", 2)], kite),
    _t("ladder", [("rungs", 3), ("feet", 2), ("top_step", 2)], ladder),
    _t("lamp", [("dome_shade", 2), ("square_base", 2), ("pull_chain", 2)], lamp),
    _t("mushroom", [("spots", 4), ("ring", 2), ("flat_cap", 2)], mushroom),
    _t("rocket", [("centre_fin", 2), ("windows", 2), ("flame", 2)], rocket),
    _t("shoe", [("laces", 3), ("heel", 2), ("stripe", 2)], shoe),
    _t("star", [("points", 3), ("circle", 2), ("tail", 3)], star_),
    _t("sun", [("rays", 3), ("face", 2), ("triangle_rays", 2)], sun),
    _t("teapot", [("knob", 2), ("square_handle", 2), ("low_spout", 2)], teapot),
    _t("tree", [("crown", 3), ("branches", 3), ("fruit", 3)], tree),
    _t("umbrella", [("ribs", 3), ("hook", 2), ("tip", 2)], umbrella),
    _t("wheel", [("spokes", 4), ("ring", 2), ("tread", 2)], wheel),
)

CLASS_NAMES: tuple[str, ...] = tuple(t.name for t in TEMPLATES)
assert len(set(CLASS_NAMES)) == len(CLASS_NAMES)
