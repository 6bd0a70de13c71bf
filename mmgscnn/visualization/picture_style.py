"""Text size, margins and colours of the pictures' titles and colour keys."""
from dataclasses import dataclass

import cv2
import numpy as np

# Below this width (px) a panel is upscaled by a whole factor.
MIN_PANEL_WIDTH = 480


@dataclass(frozen=True)
class PictureStyle:
    """Sizes (px) of what is drawn around the panels, grown with the panels.

    Args:
        scale: 1.0 suits panels up to 640 px wide; larger panels get larger
            text, margins and swatches (see :meth:`for_panel_width`).
    """
    scale: float = 1.0
    background: tuple = (255, 255, 255)  # RGB
    ink: tuple = (20, 20, 20)  # RGB, text and outlines

    @classmethod
    def for_panel_width(cls, width: int) -> 'PictureStyle':
        return cls(scale=max(1.0, width / 640))

    @property
    def font_scale(self) -> float:
        return 0.6 * self.scale

    @property
    def thickness(self) -> int:
        return max(1, int(round(self.scale)))

    @property
    def margin(self) -> int:
        return int(round(8 * self.scale))

    @property
    def swatch(self) -> int:
        """Side of a legend's colour square and height of a colour bar."""
        return int(round(16 * self.scale))

    @property
    def line_height(self) -> int:
        """Height of one line of text, descenders included."""
        (_, height), baseline = cv2.getTextSize('Ag', cv2.FONT_HERSHEY_SIMPLEX,
                                                self.font_scale, self.thickness)
        return height + baseline

    def text_width(self, text: str) -> int:
        (width, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, self.font_scale,
                                        self.thickness)
        return width

    def put_text(self, canvas: np.ndarray, text: str, x: int, y_top: int) -> None:
        """Write ``text`` on the RGB ``canvas`` (in place), its line starting
        at column ``x`` with its top at row ``y_top``."""
        (_, height), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, self.font_scale,
                                         self.thickness)
        cv2.putText(canvas, text, (int(x), int(y_top) + height), cv2.FONT_HERSHEY_SIMPLEX,
                    self.font_scale, self.ink, self.thickness, cv2.LINE_AA)

    def canvas(self, height: int, width: int) -> np.ndarray:
        """(height, width, 3) uint8 RGB filled with the background colour."""
        return np.full((height, width, 3), self.background, np.uint8)
