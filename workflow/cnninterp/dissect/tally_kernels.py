"""The tally's inner loops, compiled (numba): a batch's pixel labels, and its active pixels' counts.

``pixel_labels``: one pass over a batch's segmentation builds what the counting reads per pixel.

``count_cells``: one pass over a batch's candidates (``candidates.Candidates`` as numpy arrays) does what would
otherwise take a dozen vectorised passes over per-pixel index arrays: pick the candidates above
their unit's threshold, visit each upsampling cell with one of them at a corner once, evaluate
its output pixels by the formula of ``bilinear`` (float64, same operations in the same order:
numba does not fuse or reorder floating point unless asked to), and count every active pixel
into its unit's label row and its (image, unit) pair.

It runs on the host whatever device ran the model: candidates are a small part of the maps, so
moving them is cheap, and the counts are sums over the batch either way.
"""

from __future__ import annotations

import numba
import numpy as np

from .candidates import CENTRE


# numba caches the compiled code beside this file (or in the user's cache when that is read-only)
@numba.njit(cache=True, nogil=True)
def count_cells(ids, values, units, h, w, thresholds, strict, row_start, row_count, row_w0, row_w1, col_start, col_count, col_w0, col_w1, sh, sw, pixels, bits, visited, inter, n_active, touched):
    """Count the active upsampled pixels of one batch and layer into the tally arrays (in place).

    ``ids`` int64 (n,) logical candidate indices ``((b*U + u)*h + i)*w + j``; ``values`` float32
    (n, 9) their clamped 3x3 neighbourhoods; ``thresholds`` float32 (U,); ``strict``: only
    candidates > T open cells (exact weights), else >= T; ``row_*``/``col_*``: the
    ``bilinear.AxisTable`` arrays (start, count int64 (n_in+1,); w0, w1 float64 (n_in+1, k));
    ``pixels`` int32 (B*sh*sw, L) the labels at each pixel (0 none); ``bits`` (B*sh*sw,) integer,
    bit k set where a pixel holds a label of primary category k; ``visited`` uint8 scratch of at
    least B*U*(h+1)*(w+1) zeros (left zero). Adds to ``inter`` int64 (U, C+1) per label,
    ``n_active`` int64 (B*U,) per (image, unit) pair, and ORs into ``touched`` int64 (B*U,) the
    category bits under each pair's active pixels. Returns the number of active pixels.
    """
    h1, w1 = h + 1, w + 1
    depth = pixels.shape[1]
    total = 0
    for k in range(ids.shape[0]):
        pair = ids[k] // (h * w)
        u = pair % units
        t32 = thresholds[u]
        centre = values[k, CENTRE]
        if strict:
            if not centre > t32:
                continue
        elif not centre >= t32:
            continue
        t = np.float64(t32)
        i = (ids[k] // w) % h
        j = ids[k] % w
        image = pair // units
        for di in range(2):
            ci = i + di
            if row_count[ci] == 0:
                continue
            for dj in range(2):
                cj = j + dj
                if col_count[cj] == 0:
                    continue
                cell = (pair * h1 + ci) * w1 + cj
                if visited[cell]:
                    continue
                visited[cell] = 1
                # the cell's corners: neighbourhood rows di, di + 1 and columns dj, dj + 1
                x00 = np.float64(values[k, 3 * di + dj])
                x01 = np.float64(values[k, 3 * di + dj + 1])
                x10 = np.float64(values[k, 3 * di + dj + 3])
                x11 = np.float64(values[k, 3 * di + dj + 4])
                active = 0
                hit = 0
                for r in range(row_count[ci]):
                    a0 = row_w0[ci, r]
                    a1 = row_w1[ci, r]
                    base = (image * sh + row_start[ci] + r) * sw + col_start[cj]
                    for c in range(col_count[cj]):
                        b0 = col_w0[cj, c]
                        b1 = col_w1[cj, c]
                        value = a0 * (b0 * x00 + b1 * x01) + a1 * (b0 * x10 + b1 * x11)
                        if value > t:
                            p = base + c
                            active += 1
                            hit |= bits[p]
                            for layer in range(depth):
                                inter[u, pixels[p, layer]] += 1
                n_active[pair] += active
                touched[pair] |= hit
                total += active
    for k in range(ids.shape[0]):  # leave the scratch zero: clear every cell a candidate could have opened
        pair = ids[k] // (h * w)
        i = (ids[k] // w) % h
        j = ids[k] % w
        for di in range(2):
            for dj in range(2):
                visited[(pair * h1 + i + di) * w1 + j + dj] = 0
    return total


@numba.njit(cache=True, nogil=True)
def pixel_labels(seg, whole, label_bits):
    """Per-pixel labels of a batch, each label counted once per pixel.

    ``seg`` uint16 (B, L, sh, sw) label numbers per layer (0 none); ``whole`` bool (B, C+1) the
    images' whole-image labels; ``label_bits`` (C+1,) integer, bit k set for labels of primary
    category k. A label repeated at a pixel in a later layer, or also a whole-image label of the
    image (which covers every pixel anyway), is set to 0. Returns ``pixels`` int32
    (B*sh*sw, L) (row ``(b*sh + y)*sw + x``), ``bits`` (B*sh*sw,) of label_bits' dtype (OR over
    the pixel's labels), ``occurs`` int64 (B, C+1) each label's pixels per image (label 0: none)
    and ``used`` bool (L,): layers with any label left.
    """
    b, depth, sh, sw = seg.shape
    pixels = np.zeros((b * sh * sw, depth), dtype=np.int32)
    bits = np.zeros(b * sh * sw, dtype=label_bits.dtype)
    occurs = np.zeros(whole.shape, dtype=np.int64)
    used = np.zeros(depth, dtype=np.bool_)
    for image in range(b):
        for y in range(sh):
            for x in range(sw):
                p = (image * sh + y) * sw + x
                acc = label_bits[0] & 0
                for layer in range(depth):
                    label = np.int64(seg[image, layer, y, x])
                    if label == 0 or whole[image, label]:  # label < C+1: checked by the caller
                        continue
                    repeated = False
                    for earlier in range(layer):
                        if seg[image, earlier, y, x] == label:
                            repeated = True
                    if repeated:
                        continue
                    pixels[p, layer] = label
                    occurs[image, label] += 1
                    acc |= label_bits[label]
                    used[layer] = True
                bits[p] = acc
    return pixels, bits, occurs, used
