"""Independent float64 references of the method's formulas, written from the
paper and the documented definitions with numpy loops: no code of mmgscnn is
used, so a test comparing against them can catch a wrong formula."""
import math

import numpy as np


def fix_uniform_noise(monkeypatch):
    """Replace ``torch.rand_like`` (the Gumbel sampler's uniform draws) by a
    fixed sample per shape, in (0.01, 0.99); returns {shape: float64 sample}."""
    import torch
    u = {}

    def rand_like(x, **kwargs):
        key = tuple(x.shape)
        if key not in u:
            g = torch.Generator().manual_seed(7)
            u[key] = torch.rand(x.shape, generator=g, dtype=torch.float64) * 0.98 + 0.01
        return u[key].to(x.dtype).clone()

    monkeypatch.setattr(torch, 'rand_like', rand_like)
    return u


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def softplus(x):
    x = np.asarray(x, np.float64)
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def correlate_replicate(img, kernel):
    """2-D correlation of (H, W) ``img`` with an odd (k, k) kernel, the image
    extended by repeating its frame pixels."""
    r = kernel.shape[0] // 2
    p = np.pad(np.asarray(img, np.float64), r, mode='edge')
    h, w = img.shape
    out = np.zeros((h, w))
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            out += kernel[dy + r, dx + r] * p[r + dy:r + dy + h, r + dx:r + dx + w]
    return out


SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float64) / 4
SOBEL_Y = SOBEL_X.T


def sobel(gray):
    """Sobel derivatives / 4 (a unit step gives 1 across it): (gx, gy)."""
    return correlate_replicate(gray, SOBEL_X), correlate_replicate(gray, SOBEL_Y)


def gray(image):
    """(3, H, W) pixel values 0..255 -> (H, W) mean grey in 0..1."""
    return np.asarray(image, np.float64).mean(0) / 255.0


def sobel_magnitude(image):
    gx, gy = sobel(gray(image))
    return np.minimum(np.hypot(gx, gy), 1.0)


def canny(image, low, high):
    """Canny without smoothing: Sobel, non-maximum suppression along the
    gradient direction rounded to 0/45/90/135 degrees (by its angle), one
    step of hysteresis (a weak pixel survives next to a strong one)."""
    gx, gy = sobel(gray(image))
    mag = np.hypot(gx, gy)
    h, w = mag.shape

    def at(y, x):
        return mag[y, x] if 0 <= y < h and 0 <= x < w else 0.0

    thin = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            angle = math.degrees(math.atan2(gy[y, x], gx[y, x])) % 180
            if angle < 22.5 or angle >= 157.5:
                step = (0, 1)        # gradient along x (rows go down)
            elif angle < 67.5:
                step = (1, 1)        # gx, gy of the same sign
            elif angle < 112.5:
                step = (1, 0)
            else:
                step = (1, -1)
            m = mag[y, x]
            thin[y, x] = (m > 0 and m >= at(y + step[0], x + step[1])
                          and m >= at(y - step[0], x - step[1]))
    strong = thin & (mag >= high)
    weak = thin & (mag >= low)
    out = strong.copy()
    for y in range(h):
        for x in range(w):
            if weak[y, x] and strong[max(0, y - 1):y + 2, max(0, x - 1):x + 2].any():
                out[y, x] = True
    return out.astype(np.float64)


def boundary_target(label, ignore_index, radius):
    """(H, W) labels -> (target, valid): a valid pixel is boundary when a
    valid pixel within ``radius`` (Chebyshev, inside the image) has another
    label; a pixel within ``radius`` of an ignored one is not valid."""
    h, w = label.shape
    valid = np.ones((h, w), bool)
    for y in range(h):
        for x in range(w):
            win = label[max(0, y - radius):y + radius + 1, max(0, x - radius):x + radius + 1]
            valid[y, x] = not (win == ignore_index).any()
    return (label_boundaries(label, ignore_index, radius) & valid).astype(np.float64), valid


def balanced_bce(logits, target, valid):
    """The paper's class-balanced BCE, beta = |negatives| / |valid|: boundary
    pixels weigh beta, the others 1 - beta; mean over the valid pixels."""
    x, t = logits[valid], target[valid]
    n = t.size
    beta = (t == 0).sum() / n
    per_pixel = np.where(t == 1, beta * softplus(-x), (1 - beta) * softplus(x))
    return per_pixel.sum() / n


def cross_entropy(logits, label):
    """(C,) logits, int label -> -log softmax."""
    z = logits - logits.max()
    return -(z[label] - np.log(np.exp(z).sum()))


def attention_loss(seg_logits, label, boundary_logits, threshold, ignore_index):
    """Mean cross-entropy over the pixels whose boundary probability
    sigmoid(b) exceeds ``threshold`` (ignored labels left out)."""
    sel = (sigmoid(boundary_logits) > threshold) & (label != ignore_index)
    losses = [cross_entropy(seg_logits[:, y, x], label[y, x]) for y, x in zip(*np.nonzero(sel))]
    return float(np.mean(losses)) if losses else 0.0


def gaussian_sobel_kernels(sigma):
    """1-D (smooth, derivative) kernels: [1, 2, 1] / 4 and [-1, 0, 1], each
    convolved with a normalised Gaussian of radius ceil(2 sigma)."""
    s, d = np.array([1, 2, 1]) / 4.0, np.array([-1.0, 0, 1])
    if sigma > 0:
        r = max(1, math.ceil(2 * sigma))
        t = np.arange(-r, r + 1)
        g = np.exp(-t * t / (2 * sigma * sigma))
        g /= g.sum()
        # smoothing then correlating with d = correlating with conv(g, d)
        s, d = np.convolve(g, s), np.convolve(g, d)
    return s, d


def boundary_magnitude(m, sigma, eps=1e-6):
    """|grad(G * m)| of an (H, W) map extended by replication:
    sqrt(gx^2 + gy^2 + eps^2)."""
    s, d = gaussian_sobel_kernels(sigma)
    gx = correlate_replicate(m, np.outer(s, d))
    gy = correlate_replicate(m, np.outer(d, s))
    return np.sqrt(gx * gx + gy * gy + eps * eps)


def dual_task_parts(logits, label, noise_u, tau, sigma, ignore_index=255, on=1e-3):
    """The dual-task loss's pieces for one image, from the paper and the
    class docstring: (sum of |zeta - zeta_hat| over p+, |p+ of the truth|,
    |p+ of the prediction|); the loss of a batch is the sum of the first
    over its images divided by the larger of the two summed counts.

    ``logits`` (C, H, W), ``label`` (H, W), ``noise_u`` the uniform sample of
    the Gumbel noise. The soft sample is softmax((logits + g) / tau) with
    g = -log(-log u). For every class k, zeta_k = |grad(G * sample_k)| and
    zeta_hat_k the same of the label's one-hot map. p+ holds the (pixel,
    class) pairs where the one-hot map of the label or of the argmax has a
    boundary (magnitude > ``on``), away (by the filter radius) from ignored
    pixels."""
    c, h, w = logits.shape
    g = -np.log(-np.log(noise_u))
    y = (logits + g) / tau
    y = np.exp(y - y.max(0))
    sample = y / y.sum(0)
    pred = logits.argmax(0)
    s, _ = gaussian_sobel_kernels(sigma)
    _, far_from_ignored = boundary_target(np.where(label == ignore_index, ignore_index, 0),
                                          ignore_index, len(s) // 2)
    total, on_gt, on_pred = 0.0, 0, 0
    for k in range(c):
        zeta = boundary_magnitude(sample[k], sigma)
        zeta_hat = boundary_magnitude((label == k).astype(np.float64), sigma)
        zeta_pred = boundary_magnitude((pred == k).astype(np.float64), sigma)
        gt_on = (zeta_hat > on) & far_from_ignored
        pred_on = (zeta_pred > on) & far_from_ignored
        total += np.abs(zeta - zeta_hat)[gt_on | pred_on].sum()
        on_gt += gt_on.sum()
        on_pred += pred_on.sum()
    return total, on_gt, on_pred


def dual_task_loss(logits, label, noise_u, tau, sigma, ignore_index=255):
    """Batch (N, C, H, W) logits, (N, H, W) labels and noise -> the loss."""
    parts = [dual_task_parts(*a, tau, sigma, ignore_index)
             for a in zip(logits, label, noise_u)]
    total, on_gt, on_pred = np.sum(parts, axis=0)
    return total / max(on_gt, on_pred, 1)


def area_pool(x, size):
    """(C, H, W) -> (C, h, w) block means, H and W multiples of h and w."""
    c, hh, ww = x.shape
    h, w = size
    return x.reshape(c, h, hh // h, w, ww // w).mean(axis=(2, 4))


def conv1x1_bn_relu(x, weight, bn, relu=True):
    """(C, H, W) through a bias-free 1x1 convolution (O, C), an eval-mode
    batch norm (mean, var, gamma, beta, eps) and a ReLU."""
    y = np.einsum('oc,chw->ohw', weight, x)
    mean, var, gamma, beta, eps = bn
    y = (y - mean[:, None, None]) / np.sqrt(var[:, None, None] + eps) * gamma[:, None, None] \
        + beta[:, None, None]
    return np.maximum(y, 0) if relu else y


def label_boundaries(label, ignore_index, radius):
    """(H, W) labels -> (H, W) bool: labelled pixels with a labelled pixel of
    another class within ``radius`` (Chebyshev, inside the image)."""
    h, w = label.shape
    out = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            if label[y, x] == ignore_index:
                continue
            win = label[max(0, y - radius):y + radius + 1, max(0, x - radius):x + radius + 1]
            out[y, x] = ((win != label[y, x]) & (win != ignore_index)).any()
    return out
