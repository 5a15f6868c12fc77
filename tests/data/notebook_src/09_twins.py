# A tiny notebook source with Russian twins, for tests/test_notebook_sources.py.
# It holds one cell of each kind; all but `cleanup` and `outro` have a Russian twin.
# Its first code cell selects each edition's language, as every translated source must.

# %% [markdown] id=intro
# # 09 · Twins
#
# Alice and Bob agree on a key.

# %% [markdown] lang=ru id=intro en=7e2fe488
# # 09 · Близнецы
#
# Алиса и Боб договариваются о ключе.

# %% id=language
from labcrypto.i18n import set_language

set_language("en")  # the lab's messages in English

# %% lang=ru id=language en=f6779f75
from labcrypto.i18n import set_language

set_language("ru")  # сообщения лаборатории — по-русски

# %% id=setup
p, g = 23, 5  # the course's toy group
p, g

# %% lang=ru id=setup en=c1d347bc
p, g = 23, 5  # учебная группа курса
p, g

# %% solution grade_id=public_value
def public_value(a):
    """Return A = g^a mod p."""
    ### BEGIN SOLUTION
    return pow(g, a, p)
    ### END SOLUTION

# %% lang=ru grade_id=public_value en=fd2ece3c
def public_value(a):
    """Вернуть A = g^a mod p."""
    ### BEGIN SOLUTION
    return pow(g, a, p)
    ### END SOLUTION

# %% tests grade_id=check_public_value points=2
"""Check public_value on the course's numbers."""
assert public_value(6) == 8
### BEGIN HIDDEN TESTS
assert public_value(15) == 19
### END HIDDEN TESTS

# %% lang=ru grade_id=check_public_value en=f6c816a7
"""Проверка public_value на числах из курса."""
assert public_value(6) == 8
### BEGIN HIDDEN TESTS
assert public_value(15) == 19
### END HIDDEN TESTS

# %% [markdown] answer grade_id=why_secret points=1
# Only `a` is secret: `p`, `g` and `A` travel in the open.

# %% [markdown] lang=ru grade_id=why_secret en=a3722a6b
# Секретно только `a`: `p`, `g` и `A` передаются открыто.

# %% locked grade_id=cleanup
del public_value

# %% [markdown] id=outro
# The end.
