"""Exercise 6.1, a reference answer: an alignment from an attention map."""


def alignment(weights, source_tokens, target_tokens):
    pairs = []
    for word, row in zip(target_tokens, weights):
        best = max(range(len(row)), key=lambda j: (row[j], -j))   # the first largest
        pairs.append((word, source_tokens[best]))
    return pairs
