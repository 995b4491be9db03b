"""Fleet economics for a capacity plan: redundancy, power and rent-versus-buy.

Pure functions over numbers (or numpy arrays of them, elementwise), used by
:mod:`planner.sizing` and shown by :mod:`planner.report`.

* **Replicas with redundancy (N+k).** ``N = ceil(rps * (1 + headroom) / r)`` replicas carry
  the traffic at full load ``r`` requests/s each, and ``k`` more are spares, so the
  traffic still fits after ``k`` replica failures. All ``N + k`` serve (active-active):
  utilization ``u = rps / ((N + k) * r)``.
* **Power.** One replica draws ``u * P_full + (1 - u) * P_idle`` (the cost engine's power
  model at full load, the datasheet idle power otherwise), plus the host's share per
  device (CPUs, NICs, fans: ``host_power_w_per_device``). Facility power = IT power x PUE
  (power usage effectiveness: total site power over IT power). Peak (rack) power is the
  devices' maximum power plus the host share, times PUE.
* **Rent versus buy over a horizon of H months.** Rent: device-hours x the rental price
  (all-in, so no electricity). Buy: the purchase price of every device up front plus the
  facility's electricity over H; amortized: purchase x H / lifetime plus the same
  electricity. Break-even: the month where cumulative rent reaches the purchase plus the
  electricity, ``purchase / (monthly rent - monthly electricity)`` (never, if electricity
  costs more than the rent).
"""

from __future__ import annotations

import numpy as np

from planner.units import HOURS_PER_MONTH

DEFAULT_PUE = 1.58
"""Industry-average power usage effectiveness, Uptime Institute Global Data Center Survey
2023 ("in 2023, industry average PUE stood at 1.58"; flat at 1.55-1.59 since 2020)."""

DEFAULT_REDUNDANCY = 1
"""Spare replicas beyond what the traffic needs: N+1, the usual minimum for a service
that must survive one replica failure."""


def replicas(rps, headroom: float, rate_per_replica, redundancy: int):
    """(replicas that carry the traffic, total with the spares): ``N`` and ``N + k``."""
    with np.errstate(all="ignore"):
        need = np.ceil(rps * (1.0 + headroom) / rate_per_replica)
    return need, need + redundancy


def utilization(rps, total_replicas, rate_per_replica):
    """Mean busy fraction of each replica when ``total_replicas`` share ``rps`` requests/s."""
    with np.errstate(all="ignore"):
        return rps / (total_replicas * rate_per_replica)


def average_it_power_w(total_replicas, util, full_load_w, idle_w_per_replica, devices_per_replica,
                       host_power_w_per_device: float):
    """Average IT power of the fleet: ``R * (u * P_full + (1 - u) * P_idle + d * P_host)``."""
    return total_replicas * (util * full_load_w + (1.0 - util) * idle_w_per_replica
                             + devices_per_replica * host_power_w_per_device)


def peak_it_power_w(devices, max_power_w: float, host_power_w_per_device: float):
    """The fleet's IT power with every device at its rated maximum (what racks must feed)."""
    return devices * (max_power_w + host_power_w_per_device)


def monthly_kwh(power_w, pue: float):
    """Facility energy per month: average IT power x PUE x hours per month."""
    return power_w * pue * HOURS_PER_MONTH / 1000.0


def rent_vs_buy(devices: int, rent_usd_per_device_hour, purchase_usd_per_device, lifetime_years: float,
                facility_kwh_per_month: float, usd_per_kwh: float, horizon_months: float) -> dict:
    """Rent and buy totals over the horizon (see the module docstring). A missing price
    (None) gives None for that side; ``breakeven_months`` is None when one side is missing
    or buying never pays off."""
    electricity_month = facility_kwh_per_month * usd_per_kwh
    rent_month = None if rent_usd_per_device_hour is None else devices * rent_usd_per_device_hour * HOURS_PER_MONTH
    out = {"rent_usd": None if rent_month is None else rent_month * horizon_months,
           "buy_usd": None, "buy_amortized_usd": None, "breakeven_months": None,
           "electricity_usd": electricity_month * horizon_months}
    if purchase_usd_per_device is None:
        return out
    capex = devices * purchase_usd_per_device
    out["buy_usd"] = capex + electricity_month * horizon_months
    out["buy_amortized_usd"] = capex * horizon_months / (12.0 * lifetime_years) + electricity_month * horizon_months
    if rent_month is not None and rent_month > electricity_month:
        out["breakeven_months"] = capex / (rent_month - electricity_month)
    return out
