"""An independent judge of generated digits: an SVC trained on real scikit-learn digits (8×8).

Generated images are brought back to 8×8 (antialiased) before classification, the same round trip as the real
digits' held-out check, whose accuracy is reported beside every score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class DigitJudge:
    model: object
    held_out_accuracy: float
    round_trip_accuracy: float

    @staticmethod
    def features(images: torch.Tensor) -> np.ndarray:
        """uint8 or [-1, 1] float images N×1×S×S -> N×64 in the 0..16 scale of load_digits."""
        x = images.float()
        x = x / 255.0 if images.dtype == torch.uint8 else (x + 1) / 2
        x = F.interpolate(x, size=(8, 8), mode="bilinear", align_corners=False, antialias=True) * 16.0
        return x.reshape(len(x), 64).numpy()

    def predict(self, images: torch.Tensor) -> np.ndarray:
        """Predicted digit per image."""
        return self.model.predict(self.features(images))


def train_judge(image_size: int = 16, seed: int = 0) -> DigitJudge:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.svm import SVC

    from gantoolkit.builtin.datasets.digits import resize_digits

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.3, random_state=seed, stratify=digits.target
    )
    plain = SVC(gamma=0.001, C=10).fit(x_train, y_train)
    held_out = float((plain.predict(x_test) == y_test).mean())
    judge = DigitJudge(SVC(gamma=0.001, C=10), held_out, 0.0)

    def round_trip(x: np.ndarray) -> torch.Tensor:
        return resize_digits(torch.from_numpy(x).float().div(16).view(-1, 1, 8, 8), image_size)

    # the judge learns digits as they look after the model-size round trip, so it judges shapes, not blur
    features = judge.features(round_trip(x_train))
    judge.model.fit(features, y_train)
    judge.round_trip_accuracy = float((judge.predict(round_trip(x_test)) == y_test).mean())
    return judge
