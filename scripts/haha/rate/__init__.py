"""Blind pairwise rating: the ratings file format (`ratings`) and the local page people vote on (`server`)."""
