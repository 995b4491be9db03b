"""The deployment behind a measured row's layout columns (planner.measured reads the CSV;
planner.replay costs what this module reads): the expert-parallel and attention
data-parallel engine columns of a row (:func:`moe_layout`), the product encodings the
dev file writes some deployments in (:func:`product_encoded`, :func:`product_encoded_dp`)
and the decode workers a disaggregated sweep's concurrency implies
(:func:`sweep_decode_workers`). docs/serving-model.md "Layouts of the measured data"."""

from __future__ import annotations

import numpy as np


def moe_layout(tp, attention_dp, moe_tp, moe_ep):
    """(ep, attn_dp) engine columns from the measured layout columns (docs/serving-model.md "Layouts of
    the measured data"): experts in ``moe_ep`` groups; attention data parallel over
    ``attention_dp`` groups of ``tp`` devices, or, where the MoE spans more devices than
    tp x attention_dp records (vLLM rows leave attention DP empty), over
    ``moe_tp x moe_ep / tp`` groups."""
    tp, a = np.asarray(tp, dtype=float), np.maximum(np.asarray(attention_dp, dtype=float), 1.0)
    moe = np.maximum(moe_tp, 1.0) * np.maximum(moe_ep, 1.0)
    a = np.where((moe > tp * a) & (np.mod(moe, tp) == 0), moe / tp, a)
    return np.maximum(moe_ep, 1.0).astype(np.int64), a.astype(np.int64)


BOARD_DEVICES = 8  # GPUs of one HGX board / DGX node, the unit the sample's runs were measured on


def product_encoded(tp, moe_tp, moe_ep, attention_dp, domain_devices) -> bool:
    """Whether an aggregated row's ``tp_size`` is the product ``moe_tp_size x moe_ep_size``
    of a smaller deployment rather than a tensor-parallel group beyond one NVLink domain.

    The dev file carries some deployments twice: ``tp8_ep8`` runs of DeepSeek-R1 (TensorRT-LLM)
    and Qwen3.5-397B-A17B (SGLang) on H200 appear once as tp 8 / moe_tp 1 / moe_ep 8 and once
    as tp 64 / moe_tp 8 / moe_ep 8 (the ids say ``tp8_ep8`` in both): 16 such pairs, 13
    with identical measured TTFT and TPOT, 3 within 0.03%; gpt-oss-120b ``tp4_ep4`` runs
    read tp 16 and measure as its 4-device tp4 rows do. A tensor-parallel group wider than
    the device's NVLink domain whose size is exactly ``moe_tp x moe_ep`` (both > 1, no
    attention data parallelism) is read as ``tp = moe_tp`` devices with ``ep = moe_ep``
    expert groups (planner.replay); every other group beyond the domain is costed as one
    (planner.cost.interconnect, hierarchical all-reduce).

    On a device whose NVLink domain is wider than one board (GB200 / GB300 NVL72: 72) the
    same encoding of a board's run, ``tpN_epN`` written as tp ``N x N``, is still read so
    when the group is wider than one 8-device board (:data:`BOARD_DEVICES`) and
    ``moe_tp = moe_ep`` (every such dev row); a group inside the domain with
    ``moe_tp != moe_ep`` is taken as written."""
    if not (moe_tp > 1 and moe_ep > 1 and attention_dp <= 1 and tp == moe_tp * moe_ep):
        return False
    return bool(tp > domain_devices or (tp > BOARD_DEVICES and moe_tp == moe_ep))


def product_encoded_dp(tp, moe_tp, moe_ep, attention_dp, domain_devices):
    """The deployment behind an aggregated row whose ``tp_size x attention_dp_size`` is a
    product encoding (beyond one NVLink domain, equal to ``moe_tp_size x moe_ep_size``,
    with attention DP): ``(attention_dp, moe_tp, moe_ep)`` of the real deployment, or
    None for every other row. The dev file carries such runs twice, the twins measuring
    alike at the same total concurrency ``batch_size x attention_dp_size``:

    * ``moe_tp > 1`` (the 5 TensorRT-LLM DeepSeek-R1 rows ``tp 1, attention_dp 64,
      moe 8 x 8``, ids ``tp8_ep8``): the 8-GPU ``tp 1, attention_dp 8, moe_ep 8`` rows
      (c256: 12,223 ms TTFT, 101.8 ms TPOT in both): attention DP ``attention_dp /
      moe_tp``, experts whole (``moe_tp`` 1);
    * ``moe_tp = 1`` (the 12 vLLM MiniMax-M2.5 H100 rows ``tp 4, attention_dp 4,
      moe_ep 16``, ids ``tp4_ep4``, measured 2026-04-06): the 4-GPU ``tp 4, moe_ep 4``
      rows measured 2026-03-25 (8 pairs at 8 to 64 in flight, TPOT within 1.2%, e.g.
      16.13 / 16.06 ms at 16, 25.69 / 25.66 ms at 64): no attention DP,
      ``moe_ep / attention_dp`` expert groups.

    planner.replay reads the row as the real deployment."""
    if not (attention_dp > 1 and tp * attention_dp > domain_devices and moe_ep > 1
            and tp * attention_dp == moe_tp * moe_ep):
        return None
    if moe_tp > 1 and attention_dp % moe_tp == 0:
        return attention_dp / moe_tp, 1.0, moe_ep
    if moe_tp <= 1 and tp > 1 and moe_ep % attention_dp == 0:
        return 1.0, 1.0, moe_ep / attention_dp
    return None


SWEEP_MAX_DECODE_DEVICES = 128  # a deployment read from the concurrency stays within 16 HGX boards (assumption)


def sweep_decode_workers(total_concurrency, devices_per_worker) -> np.ndarray:
    """The decode workers a disaggregated benchmark's total concurrency implies when the row
    does not give them: the odd part of the concurrency (the concurrency over its largest
    power-of-two factor), where those workers hold at most :data:`SWEEP_MAX_DECODE_DEVICES`
    devices (``devices_per_worker`` each); else 1 (no reading).

    The disaggregated sweeps set the concurrency to a decode batch per worker (per
    attention-DP rank) times the decode workers (times the ranks), and the batches are
    powers of two (the engines' CUDA-graph batch sizes: 1, 2, 4, ..., 512), so what is left
    after the powers of two counts the workers. Checked against the dev file's 29
    disaggregated rows that write their deployment out (``decode_num_workers``), with their
    counts removed: this reading (as a lower bound on the derived decode workers,
    planner.cost.disagg.derive_workers) recovers 18, the smallest deployment alone 8 (a
    test). It recovers e.g. 36, 72, 144, 288, 576 in flight on 9 decode workers of 4 to 64
    requests and 3,584 = 64 x 8 ranks x 7 workers; it misses where a batch is not a power
    of two (3 workers at 10 or 20 requests: odd part 15, 240 devices, so no reading) or the
    workers are even (6 workers: odd part 3). The device bound keeps the reading from
    inventing deployments of thousands of GPUs (1,845 in flight: odd part 1,845)."""
    c = np.asarray(total_concurrency, dtype=float)
    v = np.where(np.isfinite(c) & (c >= 1.0), np.round(c), 1.0).astype(np.int64)
    odd = (v // (v & -v)).astype(float)
    return np.where(odd * np.asarray(devices_per_worker, dtype=float) <= SWEEP_MAX_DECODE_DEVICES, odd, 1.0)
