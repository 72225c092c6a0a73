OWNER = "the team's workers"


def resize(width: int) -> int:
    return width // 2
