"""Toy models behind the model protocol whose scores are known in closed form."""
from dataclasses import dataclass

import torch
from torch import nn

from benchmark.models.protocol import VLModel
from benchmark.models.tensors import Preprocessing, TextBatch


@dataclass
class Toy(VLModel):
    """No network: the visual tokens are the images; subclasses define the score."""

    def tokenize(self, questions):
        n = len(questions)
        return TextBatch(torch.zeros(n, 2, dtype=torch.long), torch.ones(n, 2, dtype=torch.long))

    def visual_tokens(self, images):
        return images

    def text_hidden(self, image_embeds, text, image_atts=None):
        raise NotImplementedError("this toy has no text encoder")

    def match_head(self, enc_hidden):
        raise NotImplementedError("this toy has no match head")

    def attention_sites(self, kind):
        return []

    def randomisation_stages(self):
        return []


def toy(cls, grid, side, **fields):
    """An instance of the toy class ``cls`` with a ``grid`` patch grid on ``side`` px images."""
    return cls(nn.Linear(1, 1), cls.__name__, grid, 0, Preprocessing(side, (0.0,) * 3, (1.0,) * 3),
               **fields)
