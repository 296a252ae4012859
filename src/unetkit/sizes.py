"""Which image sizes a network takes, and what it returns for them.

A :class:`SizeRule` is all the tiler needs to know about a network's shape: input sides
are ``minimum + n * step`` and the output loses ``halo`` pixels on each side. That is
the bioimage.io model format's description too (a parameterized size and a halo), so a
network from any backend, or from a package made elsewhere, has one.

- A 'same'-padding U-Net of depth d: ``minimum = step = 2**(d-1)``, ``halo = 0``.
- A 'valid'-padding U-Net of depth d: ``minimum`` is its smallest valid side, ``step =
  2**(d-1)`` and ``halo`` the context each output pixel needs on each side (the paper's
  network, depth 5: 188 + 16 n in, 4 + 16 n out, halo 92, so 572 in gives 388 out).

>>> rule = SizeRule(minimum=8, step=8)
>>> rule.input_size_for(100), rule.output_size(104), rule.accepts(100)
(104, 104, False)
>>> paper = SizeRule(minimum=188, step=16, halo=92)
>>> paper.input_size_for(388), paper.output_size(572)
(572, 388)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SizeRule:
    """Input sides ``minimum + n * step`` (n >= 0); output side = input side - 2 * halo.

    Every network has one: 'same' padding takes any multiple of its pooling factor, 'valid'
    padding loses a border (the halo) that the tiler feeds as context.

    >>> from unetkit.model import UNet, UNetConfig
    >>> UNet(UNetConfig(depth=3, base_width=2)).size_rule
    SizeRule(minimum=4, step=4, halo=0)
    >>> valid = UNet(UNetConfig(depth=3, base_width=2, padding="valid")).size_rule
    >>> valid.halo, valid.accepts(64), valid.output_size(64)
    (20, True, 24)
    """

    minimum: int
    step: int
    halo: int = 0

    def __post_init__(self) -> None:
        if self.minimum < 1 or self.step < 1 or self.halo < 0:
            raise ValueError(f"invalid size rule {self}")
        if self.minimum - 2 * self.halo < 1:
            raise ValueError(f"size rule {self} leaves no output for its smallest input")

    @property
    def pads_any_size(self) -> bool:
        """True if an image of any size can be padded up to a valid size and cropped back
        (no halo: output pixels correspond to input pixels one to one)."""
        return self.halo == 0

    def accepts(self, side: int) -> bool:
        """Whether ``side`` is a valid input side."""
        return side >= self.minimum and (side - self.minimum) % self.step == 0

    def output_size(self, input_side: int) -> int:
        """Output side for a valid input side."""
        if not self.accepts(input_side):
            raise ValueError(f"input side {input_side} does not fit {self}; use input_size_for()")
        return input_side - 2 * self.halo

    def input_size_for(self, output_side: int) -> int:
        """Smallest valid input side whose output side is at least ``output_side``."""
        needed = max(output_side + 2 * self.halo, self.minimum)
        return self.minimum + -(-(needed - self.minimum) // self.step) * self.step

    def round_down(self, input_side: int) -> int:
        """The largest valid input side not above ``input_side`` (at least ``minimum``)."""
        if input_side <= self.minimum:
            return self.minimum
        return self.minimum + (input_side - self.minimum) // self.step * self.step
