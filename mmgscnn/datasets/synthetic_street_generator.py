"""SyntheticStreet's generator: street-like scenes with exact labels.

Command line: ``tools/generate_synthetic_data.py``. :func:`generate` writes
the CamVid layout that ``SyntheticStreetDataset`` reads: ``train/``,
``trainannot/``, ``val/``, ``valannot/`` (RGB image PNG and uint8 label PNG
with the same file name) and ``meta.json`` (classes, palette, parameters,
pixel share of every class).

Scenes are drawn in a one-point perspective street model: ground points at
lateral position X and height Y (world units) with depth parameter
t = 1/distance map to x = x_v + X*t*s, y = y_h + (cam - Y)*t*s (x_v, y_h:
vanishing point; s: pixels per unit at t=1; cam: camera height). Sky, road
with lane marks, sidewalk with tiles, building facades with windows,
vegetation, poles with lamp arms and signs, fences, wires and pedestrians
are painted back to front. Every shape is rasterised once into a mask that
sets both the label and the image (no anti-aliasing), so labels carry
exactly the drawn geometry; lighting, blur and noise are applied to the
image afterwards. Thin structures: poles 2-4 px wide, wires and fence rails
2 px high in every column, fence posts 2-3 px wide.

Deterministic: image i of a split uses ``np.random.default_rng([seed,
split_id, i])`` and PNGs are written by OpenCV with fixed parameters, so the
same arguments give byte-identical files (and a split's first images do not
depend on how many are generated).
"""
import json
import os
import os.path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np

from .synthetic import CLASSES, META_FILE, PALETTE

SKY, BUILDING, ROAD, SIDEWALK, VEGETATION, POLE, SIGN, FENCE, WIRE, PEDESTRIAN = (
    CLASSES.index(c) for c in ('sky', 'building', 'road', 'sidewalk', 'vegetation',
                               'pole', 'sign', 'fence', 'wire', 'pedestrian'))
SPLITS = (('train', 'trainannot'), ('val', 'valannot'))
PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 6]
VERSION = 1

#: Colour statistics the labels must agree with: per class, a box (RGB low,
#: RGB high) that holds the median colour of the class in every image, taken
#: over its interior (pixels 2+ px away from any other class, so blur does not
#: mix in the neighbours) for the wide classes and over all its pixels for the
#: thin ones (pole, fence, wire). Lighting, blur and noise included: the
#: extremes over 1200 generated images (2 seeds), widened by 15. Signs and
#: pedestrians have no box (many colours by design).
APPEARANCE = {
    'sky': ((50, 94, 142), (210, 243, 255)),
    'building': ((61, 35, 21), (255, 232, 233)),
    'road': ((31, 33, 36), (137, 138, 142)),
    'sidewalk': ((93, 96, 85), (255, 231, 222)),
    'vegetation': ((16, 59, 6), (117, 195, 98)),
    'pole': ((80, 76, 75), (210, 204, 213)),
    'fence': ((11, 22, 8), (145, 126, 126)),
    'wire': ((0, 1, 3), (101, 107, 132)),
}
#: Classes too thin for an interior: their box holds the median over all pixels.
NO_INTERIOR = ('pole', 'fence', 'wire')

# Base colours (RGB, before lighting).
FACADES = np.array([[150, 75, 55], [170, 125, 80], [125, 120, 115], [185, 165, 130],
                    [110, 80, 70], [140, 150, 160]], np.float32)
SIGN_COLOURS = np.array([[200, 30, 30], [30, 70, 190], [230, 190, 30], [30, 130, 60]],
                        np.float32)
CLOTHES = np.array([[40, 40, 50], [180, 40, 40], [40, 70, 150], [200, 190, 170],
                    [60, 110, 60], [220, 150, 40], [120, 60, 130], [20, 20, 20]],
                   np.float32)
SKIN = np.array([[225, 185, 150], [190, 140, 100], [120, 80, 55]], np.float32)
FENCE_COLOURS = np.array([[40, 70, 45], [80, 55, 35], [70, 70, 75]], np.float32)


class Scene:
    """Canvas (image float32 RGB, label uint8) and the perspective camera.

    Args:
        rng: the image's random generator.
        h, w: image size in pixels.
    """

    def __init__(self, rng: np.random.Generator, h: int, w: int) -> None:
        self.rng, self.h, self.w = rng, h, w
        self.img = np.zeros((h, w, 3), np.float32)
        self.label = np.zeros((h, w), np.uint8)
        self.ys, self.xs = np.mgrid[0:h, 0:w].astype(np.float32)
        self.y_h = h * rng.uniform(0.36, 0.5)      # horizon row
        self.x_v = w * rng.uniform(0.35, 0.65)     # vanishing point column
        self.s = w * rng.uniform(0.08, 0.12)       # px per unit at t = 1
        self.cam = (h - self.y_h) / self.s         # camera height (units)

    # ------------------------------------------------------------ geometry
    def px(self, x_world: float, y_world: float, t: float) -> Tuple[float, float]:
        """Image (x, y) of the world point (X, Y) at depth parameter t."""
        return (self.x_v + x_world * t * self.s,
                self.y_h + (self.cam - y_world) * t * self.s)

    def size(self, units: float, t: float, lo: int = 1, hi: int = 10 ** 6) -> int:
        """``units`` at depth t in whole pixels, clipped to [lo, hi]."""
        return int(np.clip(round(units * t * self.s), lo, hi))

    def mask(self) -> np.ndarray:
        """An empty (H, W) uint8 mask for OpenCV to draw into."""
        return np.zeros((self.h, self.w), np.uint8)

    def poly(self, pts) -> np.ndarray:
        """(H, W) bool mask of a filled polygon, vertices (x, y) in px."""
        m = self.mask()
        cv2.fillPoly(m, [np.round(np.asarray(pts)).astype(np.int32)], 1, cv2.LINE_8)
        return m.astype(bool)

    def rect(self, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        """Pixels with x0 <= x < x1 and y0 <= y < y1 (rounded bounds)."""
        m = np.zeros((self.h, self.w), bool)
        xa, xb = max(int(round(x0)), 0), min(int(round(x1)), self.w)
        ya, yb = max(int(round(y0)), 0), min(int(round(y1)), self.h)
        if xa < xb and ya < yb:
            m[ya:yb, xa:xb] = True
        return m

    def curve(self, x0: float, x1: float, y_of_x, thickness: int = 2) -> np.ndarray:
        """Mask of the line y = y_of_x(x), x0 <= x <= x1 (image px), drawn
        column by column: each column covers the rows between the curve's
        values at x - 0.5 and x + 0.5 (so the line stays 4-connected) and
        ``thickness - 1`` rows more below, so it is at least ``thickness`` px
        high in every column it crosses."""
        m = np.zeros((self.h, self.w), bool)
        xa, xb = max(int(np.ceil(x0)), 0), min(int(np.floor(x1)), self.w - 1)
        if xa > xb:
            return m
        cols = np.arange(xa, xb + 1, dtype=np.float64)
        ya = np.asarray(y_of_x(np.maximum(cols - 0.5, x0)), np.float64)
        yb = np.asarray(y_of_x(np.minimum(cols + 0.5, x1)), np.float64)
        top = np.round(np.minimum(ya, yb)).astype(int)
        bottom = np.maximum(np.round(np.maximum(ya, yb)).astype(int), top) + thickness - 1
        rows = np.arange(self.h)[:, None]
        m[:, xa:xb + 1] = (rows >= top[None]) & (rows <= bottom[None])
        return m

    def paint(self, m: np.ndarray, cls: int, colour) -> None:
        """Set label ``cls`` and the image (a (3,) colour or (H, W, 3) texture) on mask m."""
        colour = np.asarray(colour, np.float32)
        self.img[m] = colour[m] if colour.ndim == 3 else colour
        self.label[m] = cls

    # ------------------------------------------------------------ textures
    def smooth_noise(self, cell: float) -> np.ndarray:
        """(H, W) smooth random field, about N(0, 1), features ``cell`` px wide."""
        gh, gw = int(self.h / cell) + 3, int(self.w / cell) + 3
        grid = self.rng.standard_normal((gh, gw)).astype(np.float32)
        big = cv2.resize(grid, (int(gw * cell), int(gh * cell)), interpolation=cv2.INTER_CUBIC)
        return big[:self.h, :self.w]

    def fine_noise(self, sigma: float, channels: int = 1) -> np.ndarray:
        """(H, W, 3) pixel noise, std ``sigma``; grey (one channel repeated) or colour."""
        n = self.rng.normal(0, sigma, (self.h, self.w, channels)).astype(np.float32)
        return n if channels == 3 else np.repeat(n, 3, axis=2)

    def tint(self, colour, shade: np.ndarray) -> np.ndarray:
        """(H, W, 3) texture: ``colour`` (RGB) times (1 + shade)."""
        return np.asarray(colour, np.float32)[None, None] * (1 + shade[..., None])


# ---------------------------------------------------------------- layers

def draw_sky(sc: Scene) -> None:
    rng = sc.rng
    top = np.array([rng.uniform(70, 110), rng.uniform(120, 160), rng.uniform(200, 235)])
    low = np.array([rng.uniform(160, 190), rng.uniform(190, 215), rng.uniform(225, 245)])
    f = np.clip(sc.ys / max(sc.y_h, 1), 0, 1)[..., None]
    tex = top * (1 - f) + low * f
    clouds = np.clip(sc.smooth_noise(sc.w / 5) - rng.uniform(0.6, 1.4), 0, 0.6)[..., None]
    tex = tex * (1 - clouds) + np.float32([235, 238, 242]) * clouds
    sc.paint(np.ones((sc.h, sc.w), bool), SKY, tex)


def ground_coords(sc: Scene):
    """World (X, depth z) of every pixel on the ground plane (rows above the
    horizon get z = 1e6)."""
    t = np.maximum((sc.ys - sc.y_h) / (sc.cam * sc.s), 1e-6)
    return (sc.xs - sc.x_v) / (t * sc.s), 1 / t


def draw_ground(sc: Scene, road: Tuple[float, float]) -> None:
    """Sidewalk below the horizon, then the road between X = road[0] and road[1]."""
    rng = sc.rng
    gx, gz = ground_coords(sc)
    below = sc.ys >= np.ceil(sc.y_h)
    tile = rng.uniform(0.7, 1.1)
    near = np.clip(1.5 / gz, 0, 1)  # tile lines fade with distance
    lines = ((np.mod(gx, tile) < 0.07 * tile) | (np.mod(gz, tile) < 0.07 * tile)) * near
    base = np.array([rng.uniform(150, 185), rng.uniform(145, 175), rng.uniform(135, 165)])
    tex = sc.tint(base, 0.06 * sc.smooth_noise(6) - 0.25 * lines)
    sc.paint(below, SIDEWALK, tex + sc.fine_noise(4))

    grey = rng.uniform(65, 95)
    tex = sc.tint([grey, grey, grey + 4], 0.07 * sc.smooth_noise(8)) + sc.fine_noise(6)
    # lane marks (part of the road): dashed centre line, solid edge lines
    mark = np.zeros((sc.h, sc.w), bool)
    centre, period, dash = sum(road) / 2, rng.uniform(3, 5), rng.uniform(1.2, 2.2)
    z = rng.uniform(0.3, 1.0)
    while z < 60:
        t0, t1 = 1 / z, 1 / (z + dash)
        mark |= sc.poly([sc.px(centre - 0.07, 0, t0), sc.px(centre + 0.07, 0, t0),
                         sc.px(centre + 0.07, 0, t1), sc.px(centre - 0.07, 0, t1)])
        z += period
    if rng.random() < 0.6:
        for x_edge in (road[0] + 0.3, road[1] - 0.3):
            mark |= sc.poly([sc.px(x_edge - 0.05, 0, 1.5), sc.px(x_edge + 0.05, 0, 1.5),
                             sc.px(x_edge + 0.05, 0, 0.01), sc.px(x_edge - 0.05, 0, 0.01)])
    white = np.float32([225, 225, 215] if rng.random() < 0.7 else [230, 200, 60])
    tex[mark] = white
    road_mask = sc.poly([sc.px(road[0], 0, 1.5), sc.px(road[1], 0, 1.5),
                         sc.px(road[1], 0, 0.005), sc.px(road[0], 0, 0.005)]) & below
    sc.paint(road_mask, ROAD, tex)


def facade_texture(sc: Scene, u: np.ndarray, y_world: np.ndarray, height: float,
                   colour: np.ndarray) -> np.ndarray:
    """Facade colour with a grid of windows; u, y_world: wall coordinates
    (units along the wall and above the ground) of every pixel."""
    rng = sc.rng
    floor_h, bay = rng.uniform(1.8, 2.6), rng.uniform(1.0, 1.6)
    win_w, win_h = bay * rng.uniform(0.35, 0.6), floor_h * rng.uniform(0.35, 0.5)
    fu = np.mod(u, bay) - (bay - win_w) / 2
    fy = np.mod(y_world, floor_h) - floor_h * 0.35
    window = (fu >= 0) & (fu < win_w) & (fy >= 0) & (fy < win_h) & \
        (y_world > floor_h * 0.9) & (y_world < height - 0.6)
    lit = rng.random((64, 64)) < rng.uniform(0.05, 0.35)
    fl = np.clip(np.floor(y_world / floor_h), 0, 63).astype(int)
    col = np.clip(np.floor(u / bay), 0, 63).astype(int)
    tex = sc.tint(colour, 0.05 * sc.smooth_noise(5)) + sc.fine_noise(3)
    glass = np.where(lit[fl, col][..., None], np.float32([205, 195, 130]),
                     np.float32([55, 65, 85]))
    return np.where(window[..., None], glass, tex)


def draw_side_buildings(sc: Scene, x_wall: float) -> None:
    """Facades on the wall plane X = x_wall, far segments first, some gaps."""
    rng = sc.rng
    z, end, segments = rng.uniform(0.4, 1.2), rng.uniform(8, 14), []
    while z < end:
        length = rng.uniform(2.5, 8)
        if rng.random() > 0.15:  # else: a gap (alley)
            segments.append((z, z + length, rng.uniform(sc.cam + 1, sc.cam + 14)))
        z += length
    with np.errstate(divide='ignore', invalid='ignore'):
        t = (sc.xs - sc.x_v) / (x_wall * sc.s)       # depth parameter on the wall
        y_world = sc.cam - (sc.ys - sc.y_h) / (t * sc.s)
        dist = 1 / t
    for z0, z1, height in reversed(segments):
        t0, t1 = 1 / z0, 1 / z1
        m = sc.poly([sc.px(x_wall, 0, t0), sc.px(x_wall, height, t0),
                     sc.px(x_wall, height, t1), sc.px(x_wall, 0, t1)])
        colour = FACADES[rng.integers(len(FACADES))] * rng.uniform(0.85, 1.1)
        u = np.where(m, dist - z0, 0)
        sc.paint(m, BUILDING, facade_texture(sc, u, np.where(m, y_world, 0), height, colour))


def draw_far_buildings(sc: Scene, x_left: float, x_right: float) -> None:
    """Frontal facades across the end of the street (plane at depth z_far)."""
    rng = sc.rng
    t = 1 / rng.uniform(12, 25)
    x_world = (sc.xs - sc.x_v) / (t * sc.s)
    y_world = sc.cam - (sc.ys - sc.y_h) / (t * sc.s)
    x = x_left - 4
    while x < x_right + 4:
        width, height = rng.uniform(3, 9), rng.uniform(2, 16)
        if rng.random() < 0.8:
            (xa, ya), (xb, yb) = sc.px(x, height, t), sc.px(x + width, 0, t)
            m = sc.rect(xa, ya, xb + 1, yb + 1)
            colour = FACADES[rng.integers(len(FACADES))] * rng.uniform(0.8, 1.05)
            sc.paint(m, BUILDING, facade_texture(sc, x_world - x, y_world, height, colour))
        x += width


def draw_tree(sc: Scene, x_world: float, z: float) -> None:
    """Trunk and an irregular crown (both vegetation) at (X, depth z)."""
    rng, t = sc.rng, 1 / z
    crown_y, radius = rng.uniform(3, 5), rng.uniform(1.2, 2.4)
    (xt, yt), (_, yg) = sc.px(x_world, crown_y, t), sc.px(x_world, 0, t)
    trunk_w = sc.size(0.3, t, lo=2)
    trunk = sc.rect(xt - trunk_w / 2, yt, xt - trunk_w / 2 + trunk_w, yg + 1)
    rx, ry = radius * t * sc.s, radius * rng.uniform(0.9, 1.3) * t * sc.s
    d = ((sc.xs - xt) / max(rx, 1)) ** 2 + ((sc.ys - yt) / max(ry, 1)) ** 2
    crown = d + 0.35 * sc.smooth_noise(max(rx / 2, 2)) < 1
    green = np.array([rng.uniform(45, 85), rng.uniform(95, 145), rng.uniform(35, 65)])
    leaves = sc.tint(green, 0.25 * sc.smooth_noise(max(rx / 4, 1.5))) + sc.fine_noise(12)
    sc.paint(trunk, VEGETATION, np.float32([95, 70, 50]) * rng.uniform(0.8, 1.1))
    sc.paint(crown, VEGETATION, leaves)


def draw_hedge(sc: Scene, x_world: float, z0: float, z1: float) -> None:
    """A hedge with a wobbly top along X = x_world from depth z0 to z1."""
    rng = sc.rng
    h = rng.uniform(0.7, 1.5)
    with np.errstate(divide='ignore', invalid='ignore'):
        t = (sc.xs[0] - sc.x_v) / (x_world * sc.s)
    cols = (t <= 1 / z0) & (t >= 1 / z1)
    wobble = 0.25 * sc.smooth_noise(3)[0]
    top = sc.y_h + (sc.cam - h - wobble) * t * sc.s
    bottom = sc.y_h + sc.cam * t * sc.s
    m = cols[None] & (sc.ys >= np.round(top)[None]) & (sc.ys <= np.round(bottom)[None])
    green = np.array([rng.uniform(40, 70), rng.uniform(85, 125), rng.uniform(30, 55)])
    sc.paint(m, VEGETATION, sc.tint(green, 0.2 * sc.smooth_noise(2)) + sc.fine_noise(10))


def draw_fence(sc: Scene, x_world: float, z0: float, z1: float) -> None:
    """Posts (2-3 px wide) every ~1 unit and two rails (2 px high) on X = x_world."""
    rng = sc.rng
    height, colour = rng.uniform(0.9, 1.4), FENCE_COLOURS[rng.integers(len(FENCE_COLOURS))]
    m = np.zeros((sc.h, sc.w), bool)
    z, step = z0, rng.uniform(0.7, 1.2)
    while z <= z1:
        t = 1 / z
        (xp, yt), (_, yg) = sc.px(x_world, height, t), sc.px(x_world, 0, t)
        w = sc.size(0.08, t, lo=2, hi=3)
        m |= sc.rect(xp - w / 2, yt, xp - w / 2 + w, yg + 1)
        z += step
    xa, xb = sorted((sc.px(x_world, 0, 1 / z0)[0], sc.px(x_world, 0, 1 / z1)[0]))
    for rail in (height, height * rng.uniform(0.4, 0.6)):
        def y_of_x(x, rail=rail):
            t = (x - sc.x_v) / (x_world * sc.s)
            return sc.y_h + (sc.cam - rail) * t * sc.s
        m |= sc.curve(xa, xb, y_of_x, thickness=2)
    sc.paint(m, FENCE, colour * rng.uniform(0.85, 1.15))


def draw_pole(sc: Scene, x_world: float, z: float, towards_road: float) -> Tuple[float, float]:
    """A pole 2-4 px wide at (X, depth z), maybe with a lamp arm (reaching out
    along X in the direction of the sign of ``towards_road``) and a sign;
    returns its top (x, y) in px."""
    rng, t = sc.rng, 1 / z
    height = rng.uniform(4.5, 7)
    w = sc.size(0.18, t, lo=2, hi=4)
    (xc, yt), (_, yg) = sc.px(x_world, height, t), sc.px(x_world, 0, t)
    x0 = xc - w / 2
    m = sc.rect(x0, yt, x0 + w, yg + 1)
    grey = rng.uniform(105, 150)
    shade = np.where(sc.xs < x0 + w / 2, 1.12, 0.9)[..., None]
    tex = np.float32([grey, grey, grey + 6]) * shade
    if rng.random() < 0.5:  # lamp arm towards the road, 2 px high
        xe = sc.px(x_world + towards_road * rng.uniform(0.8, 1.6), height, t)[0]
        xa, xb = sorted((xc, xe))
        m |= sc.curve(xa, xb, lambda x: np.full_like(x, yt), thickness=2)
        lamp = sc.rect(xe - 2, yt + 1, xe + 2, yt + 3)
        m |= lamp
    sc.paint(m, POLE, tex)
    if rng.random() < 0.55:
        draw_sign(sc, xc, sc.px(x_world, rng.uniform(2.4, 3.4), t)[1], t)
    return xc, yt


def draw_sign(sc: Scene, xc: float, yc: float, t: float) -> None:
    """A round, triangular or square sign plate (5+ px) centred at (xc, yc)."""
    rng = sc.rng
    d = sc.size(rng.uniform(0.55, 0.9), t, lo=5)
    colour = SIGN_COLOURS[rng.integers(len(SIGN_COLOURS))]
    m, inner = sc.mask(), sc.mask()
    c, r = (int(round(xc)), int(round(yc))), d // 2
    shape = rng.integers(3)
    if shape == 0:
        cv2.circle(m, c, r, 1, -1, cv2.LINE_8)
        cv2.circle(inner, c, max(r - 2, 1), 1, -1, cv2.LINE_8)
    elif shape == 1:
        tri = np.array([[c[0], c[1] - r], [c[0] + r, c[1] + r], [c[0] - r, c[1] + r]])
        cv2.fillPoly(m, [tri.astype(np.int32)], 1, cv2.LINE_8)
        cv2.fillPoly(inner, [((tri - c) * 0.5 + c).round().astype(np.int32)], 1, cv2.LINE_8)
    else:
        cv2.rectangle(m, (c[0] - r, c[1] - r), (c[0] + r, c[1] + r), 1, -1)
        cv2.rectangle(inner, (c[0] - r + 2, c[1] - r + 2), (c[0] + r - 2, c[1] + r - 2), 1, -1)
    tex = np.broadcast_to(colour, sc.img.shape).copy()
    if d >= 8:
        tex[inner.astype(bool)] = 235
    sc.paint(m.astype(bool), SIGN, tex)


def draw_wire(sc: Scene, a: Tuple[float, float], b: Tuple[float, float], sag: float) -> None:
    """A wire 2 px high in every column from a to b (image points), sagging ``sag`` px."""
    (xa, ya), (xb, yb) = sorted((a, b))
    if xb - xa < 2:
        return

    def y_of_x(x):
        u = (x - xa) / (xb - xa)
        return ya + (yb - ya) * u + 4 * sag * u * (1 - u)
    sc.paint(sc.curve(xa, xb, y_of_x, thickness=2), WIRE,
             np.float32([35, 35, 40]) * sc.rng.uniform(0.7, 1.3))


def draw_pedestrian(sc: Scene, x_world: float, z: float) -> None:
    """Head, torso, arms and legs; about 1.7 units tall."""
    rng, t = sc.rng, 1 / z
    (xc, yf), (_, yh) = sc.px(x_world, 0, t), sc.px(x_world, rng.uniform(1.5, 1.9), t)
    size = yf - yh
    if size < 6:
        return
    head_r = max(1, int(round(size * 0.1)))
    limb = max(2, int(round(size * 0.07)))
    body_w = max(3, size * 0.28)
    shirt, trousers = CLOTHES[rng.integers(len(CLOTHES))], CLOTHES[rng.integers(len(CLOTHES))]
    skin = SKIN[rng.integers(len(SKIN))]
    y_neck, y_hip = yh + 2 * head_r, yh + size * 0.55
    step = rng.uniform(0.05, 0.18) * size
    legs, arms, head = sc.mask(), sc.mask(), sc.mask()
    for dx in (-step, step):
        cv2.line(legs, (int(round(xc)), int(round(y_hip))), (int(round(xc + dx)), int(round(yf))),
                 1, limb, cv2.LINE_8)
        cv2.line(arms, (int(round(xc + np.sign(dx) * body_w / 2)), int(round(y_neck + 1))),
                 (int(round(xc + dx * 1.4)), int(round(y_hip))), 1, limb, cv2.LINE_8)
    cv2.circle(head, (int(round(xc)), int(round(yh + head_r))), head_r, 1, -1, cv2.LINE_8)
    torso = sc.rect(xc - body_w / 2, y_neck, xc + body_w / 2, y_hip + 1)
    sc.paint(legs.astype(bool), PEDESTRIAN, trousers)
    sc.paint(arms.astype(bool) | torso, PEDESTRIAN, shirt)
    sc.paint(head.astype(bool), PEDESTRIAN, skin)


# ----------------------------------------------------------------- scene

def render(rng: np.random.Generator, h: int, w: int) -> Tuple[np.ndarray, np.ndarray]:
    """One scene: (H, W, 3) uint8 RGB image and (H, W) uint8 label map."""
    sc = Scene(rng, h, w)
    road = (-rng.uniform(2.2, 4.5), rng.uniform(2.2, 4.5))
    walls = (road[0] - rng.uniform(1.5, 3.5), road[1] + rng.uniform(1.5, 3.5))
    draw_sky(sc)
    draw_ground(sc, road)
    draw_far_buildings(sc, *walls)
    for x_wall in walls:
        if rng.random() < 0.9:
            draw_side_buildings(sc, x_wall)

    # Objects on the sidewalks, drawn far to near: (depth, kind, args)
    objects = []
    for side, (curb, wall) in enumerate(((road[0], walls[0]), (road[1], walls[1]))):
        inward = 1.0 if side == 0 else -1.0   # from the wall towards the road
        if rng.random() < 0.6:
            z0 = rng.uniform(1.5, 6)
            objects.append((z0 + 3, 'hedge', (wall + inward * 0.4, z0, z0 + rng.uniform(2, 6))))
        if rng.random() < 0.5:
            z0 = rng.uniform(1.2, 5)
            x = wall + inward * 0.5 if rng.random() < 0.5 else curb - inward * 0.3
            objects.append((z0 + 2, 'fence', (x, z0, z0 + rng.uniform(2, 6))))
        for _ in range(rng.integers(0, 4)):
            objects.append((rng.uniform(1.5, 12), 'tree', (wall + inward * rng.uniform(0.6, 1.2),)))
        z = rng.uniform(1.0, 3.0)
        while z < 14:
            objects.append((z, 'pole', (curb - inward * 0.4, inward, side)))
            z += rng.uniform(3, 7)
        for _ in range(rng.integers(0, 5)):
            x = rng.uniform(min(curb, wall) + 0.4, max(curb, wall) - 0.4)
            objects.append((rng.uniform(1.1, 10), 'person', (x,)))
    objects.sort(key=lambda o: -o[0])

    tops = {0: [], 1: []}
    for z, kind, args in objects:
        if kind == 'hedge':
            draw_hedge(sc, *args)
        elif kind == 'fence':
            draw_fence(sc, *args)
        elif kind == 'tree':
            draw_tree(sc, args[0], z)
        elif kind == 'person':
            draw_pedestrian(sc, args[0], z)
        else:
            x_world, inward, side = args
            top = draw_pole(sc, x_world, z, inward)
            if tops[side] and rng.random() < 0.8:  # wire to the previous (farther) pole
                draw_wire(sc, tops[side][-1], top, rng.uniform(1, 6))
            tops[side].append(top)
    for _ in range(rng.integers(0, 3)):  # wires across the street, above everything
        ya, yb = rng.uniform(0.02, 0.35) * h, rng.uniform(0.02, 0.35) * h
        draw_wire(sc, (-1.0, ya), (w + 1.0, yb), rng.uniform(2, 10))
    return light(sc), sc.label


def light(sc: Scene) -> np.ndarray:
    """Lighting (gain, colour cast, illumination gradient), blur and noise."""
    rng = sc.rng
    gain = rng.uniform(0.85, 1.15)
    cast = rng.uniform(-8, 8, 3).astype(np.float32)
    gx, gy = rng.uniform(-0.15, 0.15, 2)
    field = 1 + gx * (sc.xs / sc.w - 0.5) * 2 + gy * (sc.ys / sc.h - 0.5) * 2
    img = sc.img * (gain * field)[..., None] + cast
    sigma = rng.uniform(0, 0.9)
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img = img + sc.fine_noise(rng.uniform(1.5, 5), channels=3)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------- I/O

def class_shares(labels: List[np.ndarray]) -> Dict[str, float]:
    counts = np.bincount(np.concatenate([lab.ravel() for lab in labels]),
                         minlength=len(CLASSES))[:len(CLASSES)]
    return {c: round(float(n) / max(int(counts.sum()), 1), 5) for c, n in zip(CLASSES, counts)}


def _prepare(out_dir: str) -> None:
    """Refuse a non-empty folder that is not an earlier output of this tool;
    clear the old PNGs of one that is (a smaller run leaves no stale files)."""
    if osp.isdir(out_dir) and os.listdir(out_dir):
        if not osp.isfile(osp.join(out_dir, META_FILE)):
            raise FileExistsError(
                f'{out_dir!r} is not empty and holds no {META_FILE}, so it is not a '
                'folder this generator wrote; choose an empty or new output folder')
        for pair in SPLITS:
            for folder in pair:
                path = osp.join(out_dir, folder)
                if osp.isdir(path):
                    for name in os.listdir(path):
                        if name.endswith('.png'):
                            os.remove(osp.join(path, name))


def generate(out_dir: str = 'data/synthetic', num_train: int = 160, num_val: int = 40,
             height: int = 120, width: int = 160, seed: int = 0) -> dict:
    """Write the dataset and return its meta data (also in ``out_dir/meta.json``).

    Args:
        out_dir: data root; created if needed. A non-empty folder must be an
            earlier output of this function (it has ``meta.json``).
        num_train, num_val: number of images per split.
        height, width: image size in pixels (at least 48 x 64).
        seed: random seed; equal arguments give byte-identical files.

    Returns:
        dict: classes, palette, arguments and each split's class pixel shares.
    """
    if num_train < 0 or num_val < 0:
        raise ValueError(f'image counts must be >= 0, got num_train={num_train}, '
                         f'num_val={num_val}')
    if height < 48 or width < 64:
        raise ValueError(f'images must be at least 48 x 64 (H x W) px, got '
                         f'{height} x {width}')
    _prepare(out_dir)
    meta = dict(generator='tools/generate_synthetic_data.py', version=VERSION,
                classes=list(CLASSES), palette=PALETTE, seed=seed, height=height,
                width=width, num_train=num_train, num_val=num_val,
                layout={img: ann for img, ann in SPLITS}, class_pixel_share={})
    for split_id, ((img_dir, ann_dir), n) in enumerate(zip(SPLITS, (num_train, num_val))):
        os.makedirs(osp.join(out_dir, img_dir), exist_ok=True)
        os.makedirs(osp.join(out_dir, ann_dir), exist_ok=True)
        labels = []
        for i in range(n):
            rng = np.random.default_rng([seed, split_id, i])
            img, label = render(rng, height, width)
            name = f'{img_dir}_{i:04d}.png'
            for path, arr in ((osp.join(out_dir, img_dir, name), img[..., ::-1]),
                              (osp.join(out_dir, ann_dir, name), label)):
                if not cv2.imwrite(path, np.ascontiguousarray(arr), PNG_PARAMS):
                    raise OSError(f'could not write {path}')
            labels.append(label)
        meta['class_pixel_share'][img_dir] = class_shares(labels) if labels else {}
    with open(osp.join(out_dir, META_FILE), 'w') as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write('\n')
    return meta


__all__ = ['generate', 'render', 'Scene', 'APPEARANCE', 'NO_INTERIOR']
