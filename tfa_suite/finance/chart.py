"""A life's balances against age, drawn with Pillow: the frames of a finance run's video."""

from __future__ import annotations

import numpy as np

from tfa_suite.finance.params import END_AGE, START_AGE
from tfa_suite.finance.sim import FinanceSim


class LifeChart:
    """Draws one life's balances against age, with Pillow: the frames of a run's video.

    Amounts are in thousands of age-18 dollars (the reward is in the same real dollars).
    """

    SIZE = (480, 320)
    SERIES = (("net worth", (20, 20, 20)), ("home equity", (200, 120, 30)),
              ("tax-advantaged", (40, 110, 200)), ("taxable", (40, 160, 80)))  # fmt: skip
    _LEFT, _TOP, _RIGHT, _BOTTOM = 56, 44, 470, 290

    def __init__(self) -> None:
        self._ages: list[float] = []
        self._values: list[tuple[float, ...]] = []

    def start(self, sim: FinanceSim) -> None:
        self._ages, self._values = [], []
        self.record(sim)

    def record(self, sim: FinanceSim) -> None:
        equity = sim.house_price[0] * sim.owned[0] - sim.loan[0]
        values = (sim.net_worth()[0], equity, sim.tax_advantaged[0], sim.taxable[0])
        self._ages.append(sim.age)
        self._values.append(tuple(float(v) / 1000 / sim.deflator() for v in values))

    def render(self, sim: FinanceSim) -> np.ndarray:
        from PIL import Image, ImageDraw

        image = Image.new("RGB", self.SIZE, (255, 255, 255))
        draw = ImageDraw.Draw(image)
        values = np.asarray(self._values)
        low, high = min(0.0, values.min()), max(1.0, values.max())
        left, top, right, bottom = self._LEFT, self._TOP, self._RIGHT, self._BOTTOM

        def xy(age: float, value: float) -> tuple[float, float]:
            x = left + (age - START_AGE) / (END_AGE - START_AGE) * (right - left)
            return x, bottom - (value - low) / (high - low) * (bottom - top)

        draw.rectangle((left, top, right, bottom), outline=(160, 160, 160))
        draw.line((xy(START_AGE, 0.0), xy(END_AGE, 0.0)), fill=(200, 200, 200))
        for value in (low, high):
            draw.text((4, xy(START_AGE, value)[1] - 6), f"${value:,.0f}k", fill=(90, 90, 90))
        for age in range(START_AGE, END_AGE + 1, 10):
            draw.text((xy(age, low)[0] - 6, bottom + 4), str(age), fill=(90, 90, 90))
        for k, (name, colour) in enumerate(self.SERIES):
            if len(self._ages) > 1:
                draw.line([xy(a, v[k]) for a, v in zip(self._ages, values)], fill=colour, width=2)
            draw.text((left + 6 + 104 * k, bottom + 16), name, fill=colour)
        salary = sim.salary()[0] / sim.deflator()
        status = "employed" if sim.observation()[0, 7] > 0.5 else "out of work"
        if sim.foreclosed_at[0] >= 0:
            status += f", foreclosed at {START_AGE + sim.foreclosed_at[0] // 12}"
        elif sim.late[0]:
            status += f", {sim.late[0]} late payment(s)"
        header = (
            f"age {sim.age:4.1f}   salary ${salary / 1000:,.0f}k/yr   "
            f"net worth ${values[-1, 0]:,.0f}k   (age-18 dollars)"
        )
        draw.text((8, 6), header, fill=(0, 0, 0))
        draw.text((8, 22), status, fill=(120, 40, 40))
        return np.asarray(image, dtype=np.uint8)
