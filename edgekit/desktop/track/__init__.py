"""The desktop side of `edgekit track`: scoring tracks with an established MOT evaluation library."""
