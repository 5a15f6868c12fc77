# Source of notebooks/01_keys.ipynb: build it with `python tools/build_notebooks.py`.
# Cells start at `# %%` markers; tools/build_notebooks.py explains their roles and ids.

# %% [markdown] id=cell-000
# # 01 · Keys: agreeing on a secret in public
#
# *Two strangers pick one shared number while everyone listens — and keep their keys on disk (task 1).*
#
# **After this notebook you will be able to**
#
# 1. compute a Diffie-Hellman public value `A = g^a mod p` and the shared secret `K = B^a mod p`, and say which numbers are secret;
# 2. explain, with a measurement, why nobody can get `a` back from `A` in a 2048-bit group;
# 3. refuse the public values an attacker would send (0, 1, p-1, …);
# 4. keep a key pair in text files that are private and reused between runs.
#
# **You need:** Python functions, `%`, and the Caesar-cipher lab. **Time:** about 50 minutes.

# %% [markdown] lang=ru id=cell-000 en=cbd7ad1a
# # 01 · Ключи: договориться о секрете при всех
#
# *Двое незнакомых людей выбирают одно общее число, пока их слушают все, — и хранят свои ключи на диске (задание 1).*
#
# **После этого блокнота вы сможете**
#
# 1. вычислить открытое значение Диффи — Хеллмана `A = g^a mod p` и общий секрет `K = B^a mod p` и сказать, какие из этих чисел секретны;
# 2. объяснить, опираясь на измерение, почему никто не вернёт `a` по `A` в 2048-битной группе;
# 3. отвергать открытые значения, которые прислал бы злоумышленник (0, 1, p-1, …);
# 4. хранить пару ключей в текстовых файлах, закрытых от других и переиспользуемых между запусками.
#
# **Что нужно:** функции Python, `%` и лабораторная о шифре Цезаря. **Время:** около 40 минут.

# %% [markdown] id=cell-001
# **Run these two cells first.** The first sets the language of the lab's messages (checks, panels, plots); the second only imports what the notebook uses.

# %% [markdown] lang=ru id=cell-001 en=bc1bfe98
# **Сначала выполните эти две ячейки.** Первая выбирает язык сообщений лаборатории (проверок, панелей, графиков), вторая только импортирует то, что нужно блокноту.

# %% id=language
from labcrypto.i18n import set_language

set_language("en")      # the lab's messages in English

# %% lang=ru id=language en=ed0fa723
from labcrypto.i18n import set_language

set_language("ru")      # сообщения лаборатории — по-русски

# %% id=cell-002
import os
import time
from pathlib import Path

from labcrypto import groups, keys
from labcrypto.lab import checks_01_keys as checks
from labcrypto.lab import plots, variants, vocabulary, widgets

# %% [markdown] id=cell-003
# **Your student id.** Type it once between the quotes, exactly as your instructor knows you, and run the cell.
# Some exercises use numbers made from it, so yours differ from your neighbour's; the autograder makes the same numbers from the same id
# (when it grades, it uses the id your submission was collected under). Compute your answers in the notebook: a pasted number fits only one id.

# %% [markdown] lang=ru id=cell-003 en=053b3025
# **Ваш идентификатор студента.** Впишите его один раз между кавычками — ровно так, как вас знает преподаватель, — и выполните ячейку.
# Некоторые упражнения используют числа, составленные из него, поэтому ваши числа отличаются от чисел соседа. Автопроверка получает из того же идентификатора те же числа
# (при проверке она берёт идентификатор, под которым собрана ваша работа). Вычисляйте ответы в блокноте: вставленное готовое число подходит только к одному идентификатору.

# %% id=cell-004
STUDENT_ID = ""        # for example "s1234567"
my = variants.variant(variants.student_id(STUDENT_ID))
my

# %% lang=ru id=cell-004 en=c7cdfb3f
STUDENT_ID = ""        # например, "s1234567"
my = variants.variant(variants.student_id(STUDENT_ID))
my

# %% [markdown] id=cell-005
# ## 1 · The idea in small numbers
#
# Alice and Bob want a shared secret key, but every byte between them can be read by Eve.
# They first agree, in public, on two numbers: a prime `p` and a generator `g`.
# The course uses `p = 23, g = 5`:

# %% [markdown] lang=ru id=cell-005 en=dac55058
# ## 1 · Идея на маленьких числах
#
# Алиса и Боб хотят получить общий секретный ключ, но каждый байт между ними может прочитать Ева.
# Сначала они открыто договариваются о двух числах: простом `p` и образующей `g`.
# В курсе взяты `p = 23, g = 5`:

# %% id=cell-006
p, g = groups.TOY.p, groups.TOY.g
p, g

# %% [markdown] id=cell-007
# Alice picks a **secret** exponent `a` and sends `A = g^a mod p`.
# Python's three-argument `pow(g, a, p)` computes it without ever building the huge number `g^a`.
# (It is not *constant-time*: how long it takes depends on the bits of `a`, which a patient attacker who can time it
# may learn from. Fine for seeing the numbers; real code uses a constant-time routine — the lab's 2048-bit
# handshake calls GMP's `powmod_sec` through `groups.power`, TLS libraries use OpenSSL's, new protocols use X25519.)

# %% [markdown] lang=ru id=cell-007 en=9e9dfd99
# Алиса выбирает **секретный** показатель степени `a` и отправляет `A = g^a mod p`.
# Встроенная `pow(g, a, p)` с тремя аргументами вычисляет его, ни разу не строя огромное число `g^a`.
# (Её время работы *не постоянно*: оно зависит от битов `a`, и терпеливый противник, который может её засекать,
# узнаёт о них. Чтобы увидеть числа, это неважно; настоящий код берёт процедуру с постоянным временем — 2048-битное
# рукопожатие лаборатории вызывает `powmod_sec` из GMP через `groups.power`, библиотеки TLS — процедуру OpenSSL, новые протоколы — X25519.)

# %% id=cell-008
a = 6                # Alice's secret: never leaves her computer
A = pow(g, a, p)     # her public value: sent over the network
A

# %% lang=ru id=cell-008 en=da3ba505
a = 6                # секрет Алисы: никогда не покидает её компьютер
A = pow(g, a, p)     # её открытое значение: передаётся по сети
A

# %% id=cell-009
b = 15               # Bob's secret
B = pow(g, b, p)     # Bob's public value
B

# %% lang=ru id=cell-009 en=df1ecad4
b = 15               # секрет Боба
B = pow(g, b, p)     # открытое значение Боба
B

# %% [markdown] id=cell-010
# Now each side combines **its own secret** with **the other's public value**:

# %% [markdown] lang=ru id=cell-010 en=3dbe8309
# Теперь каждая сторона объединяет **свой секрет** с **открытым значением другой стороны**:

# %% id=cell-011
K_alice = pow(B, a, p)
K_bob = pow(A, b, p)
K_alice, K_bob

# %% [markdown] id=cell-012
# The same number, because `(g^b)^a = g^(a·b) = (g^a)^b (mod p)`. Nobody sent `K`:
# each side computed it. (Sending `K` "to compare" would hand it to Eve — a common mistake.)

# %% [markdown] lang=ru id=cell-012 en=0aa5747b
# Число одно и то же, потому что `(g^b)^a = g^(a·b) = (g^a)^b (mod p)`. Никто не отправлял `K`:
# каждая сторона вычислила его сама. (Отправить `K`, «чтобы сравнить», — значит отдать его Еве; это частая ошибка.)

# %% id=cell-013
widgets.exchange_table(a, b)

# %% [markdown] id=cell-014
# > **Reading the course text.** It writes the client's public key as "(p, q, A)": it means **(p, g, A)**.
# > It also says only the client can decrypt "because only he knows the right p and q".
# > In fact **p and g are public** — the table above shows them to everyone.
# > The only secrets are the exponents `a` and `b`.
#
# The table shows one exchange. The panel below shows what a table cannot: which numbers can occur at all.
# It lists `g^1, g^2, …, g^22 mod 23` in a row, with Alice's `A = g^a` marked.
# The powers come back to 1 after a number of steps called the **order** of `g`, then repeat (grey):
# only that many numbers can ever be `A`, `B` or `K`, whatever the secrets. The course's `g = 5` reaches all 22.
# Move `g` to 2 (order 11: Eve has half as many exponents to try), then to 22 = p − 1
# (order 2: `A`, `B` and `K` are 1 or 22 — which is why a public value `p − 1` is refused).
# No `g` has any order but 1, 2, 11 or 22, because 23 = 2·11 + 1 with 11 prime: a *safe prime*.
# The lab's real 2048-bit groups are safe primes for the same reason.

# %% [markdown] lang=ru id=cell-014 en=24e9b545
# > **Читаем текст курса.** Открытый ключ клиента записан в нём как «(p, q, A)» — имеется в виду **(p, g, A)**.
# > Там же сказано, что расшифровать может только клиент, «потому что только он знает правильные p и q».
# > На самом деле **p и g открыты** — таблица выше показывает их всем.
# > Секретны только показатели `a` и `b`.
#
# Таблица показывает один обмен. Панель ниже показывает то, чего таблица показать не может: какие числа вообще могут появиться.
# В ней в ряд выписаны `g^1, g^2, …, g^22 mod 23`, а `A = g^a` Алисы выделено.
# Через некоторое число шагов степени возвращаются к 1 — это число называется **порядком** `g` — и дальше повторяются (серым):
# только столько чисел и может оказаться `A`, `B` или `K`, какими бы ни были секреты. У `g = 5` из курса их все 22.
# Поставьте `g` = 2 (порядок 11: Еве нужно перебрать вдвое меньше показателей), затем 22 = p − 1
# (порядок 2: `A`, `B` и `K` равны 1 или 22 — поэтому открытое значение `p − 1` и отвергается).
# Других порядков, кроме 1, 2, 11 и 22, ни у одного `g` нет, потому что 23 = 2·11 + 1, а 11 — простое: это *безопасное простое число*.
# Настоящие 2048-битные группы лаборатории — безопасные простые числа по той же причине.

# %% id=cell-015
widgets.order_sliders(g=5, a=6)      # p = 23, the course's group

# %% lang=ru id=cell-015 en=65f54799
widgets.order_sliders(g=5, a=6)      # p = 23, группа из курса

# %% [markdown] id=cell-016
# ## 2 · Exercise: compute a public value
#
# Write `public_value(group, a)`, which returns `A = g^a mod p`.
# `group.p` and `group.g` are the public numbers.
# It must also work in the real 2048-bit group, so use `pow` with three arguments.
#
# Example: `public_value(groups.TOY, 6)` should give `8`.

# %% [markdown] lang=ru id=cell-016 en=77f8d1a4
# ## 2 · Упражнение: вычислите открытое значение
#
# Напишите `public_value(group, a)`, которая возвращает `A = g^a mod p`.
# `group.p` и `group.g` — открытые числа.
# Функция должна работать и в настоящей 2048-битной группе, поэтому пользуйтесь `pow` с тремя аргументами.
#
# Пример: `public_value(groups.TOY, 6)` должна дать `8`.

# %% solution grade_id=public_value
def public_value(group, a):
    """Return A = g^a mod p for the secret exponent a."""
    ### BEGIN SOLUTION
    return pow(group.g, a, group.p)
    ### END SOLUTION

# %% lang=ru grade_id=public_value en=57c0d408
def public_value(group, a):
    """Вернуть A = g^a mod p для секретного показателя a."""
    ### BEGIN SOLUTION
    return pow(group.g, a, group.p)
    ### END SOLUTION

# %% tests grade_id=check_public_value points=1
"""Check public_value: A = g^a mod p, from p = 23 up to 2048 bits."""
checks.check_public_value(public_value)
### BEGIN HIDDEN TESTS
checks.hidden_public_value(public_value, STUDENT_ID)
### END HIDDEN TESTS

# %% lang=ru grade_id=check_public_value en=aab726b4
"""Проверка public_value: A = g^a mod p, от p = 23 до 2048 битов."""
checks.check_public_value(public_value)
### BEGIN HIDDEN TESTS
checks.hidden_public_value(public_value, STUDENT_ID)
### END HIDDEN TESTS

# %% [markdown] id=cell-019
# ## 3 · Exercise: the shared secret, and values to refuse
#
# Write `shared_secret(group, my_secret, peer_public)`, which returns `K = peer_public^my_secret mod p`.
#
# First check the peer's value. Some values let an attacker know `K` without any secret:
# with `B = 1`, `K = 1` whatever `a` is, and 0 and `p-1` are just as bad.
# Values outside the subgroup that `g` generates leak bits of your secret.
# `groups.validate_public(group, peer_public)` checks all of these and raises `InvalidPublicValue`, a `ValueError`.

# %% [markdown] lang=ru id=cell-019 en=c50b5456
# ## 3 · Упражнение: общий секрет и значения, которые надо отвергать
#
# Напишите `shared_secret(group, my_secret, peer_public)`, которая возвращает `K = peer_public^my_secret mod p`.
#
# Сначала проверьте значение собеседника. Некоторые значения позволяют злоумышленнику знать `K` без всякого секрета:
# при `B = 1` получается `K = 1` при любом `a`, а 0 и `p-1` ничем не лучше.
# Значения вне подгруппы, которую порождает `g`, выдают биты вашего секрета.
# `groups.validate_public(group, peer_public)` проверяет всё это и выбрасывает `InvalidPublicValue` (это `ValueError`).

# %% solution grade_id=shared_secret
def shared_secret(group, my_secret, peer_public):
    """Return K = peer_public^my_secret mod p; raise ValueError for a value we must not use."""
    ### BEGIN SOLUTION
    groups.validate_public(group, peer_public)
    return pow(peer_public, my_secret, group.p)
    ### END SOLUTION

# %% lang=ru grade_id=shared_secret en=72511863
def shared_secret(group, my_secret, peer_public):
    """Вернуть K = peer_public^my_secret mod p; ValueError для значения, которым нельзя пользоваться."""
    ### BEGIN SOLUTION
    groups.validate_public(group, peer_public)
    return pow(peer_public, my_secret, group.p)
    ### END SOLUTION

# %% tests grade_id=check_shared_secret points=2
"""Check shared_secret: both sides get the same K, and bad public values are refused."""
checks.check_shared_secret(shared_secret)
### BEGIN HIDDEN TESTS
checks.hidden_shared_secret(shared_secret, STUDENT_ID)
### END HIDDEN TESTS

# %% lang=ru grade_id=check_shared_secret en=700ba4f6
"""Проверка shared_secret: обе стороны получают один и тот же K, плохие открытые значения отвергаются."""
checks.check_shared_secret(shared_secret)
### BEGIN HIDDEN TESTS
checks.hidden_shared_secret(shared_secret, STUDENT_ID)
### END HIDDEN TESTS

# %% [markdown] id=cell-022
# ### Exercise: your own numbers
#
# `my` (from the cell at the top) holds **your** toy group `my.p`, `my.g`, your secret `my.a`, and the public value `my.B` that Bob sent you.
# Compute your public value `my_A` and the key `my_K` you share with Bob, from `my`'s numbers: by hand with `pow`, or with your functions above, which take a group: `public_value(my.group, my.a)`, `shared_secret(my.group, my.a, my.B)` (`my` itself is not a group).

# %% [markdown] lang=ru id=cell-022 en=0a4f56ad
# ### Упражнение: ваши собственные числа
#
# В `my` (из ячейки в начале) лежат **ваша** учебная группа `my.p`, `my.g`, ваш секрет `my.a` и открытое значение `my.B`, которое прислал вам Боб.
# Вычислите своё открытое значение `my_A` и общий с Бобом ключ `my_K` из чисел `my`: вручную через `pow` или своими функциями выше, которые принимают группу: `public_value(my.group, my.a)`, `shared_secret(my.group, my.a, my.B)` (сам `my` группой не является).

# %% id=cell-023
my.p, my.g, my.a, my.B

# %% solution grade_id=my_numbers
my_A = None    # your public value in your group
my_K = None    # the key you share with Bob
### BEGIN SOLUTION
my_A = pow(my.g, my.a, my.p)
my_K = pow(my.B, my.a, my.p)
### END SOLUTION
my_A, my_K

# %% lang=ru grade_id=my_numbers en=1cb69129
my_A = None    # ваше открытое значение в вашей группе
my_K = None    # ваш общий с Бобом ключ
### BEGIN SOLUTION
my_A = pow(my.g, my.a, my.p)
my_K = pow(my.B, my.a, my.p)
### END SOLUTION
my_A, my_K

# %% tests grade_id=check_my_numbers points=1
"""Check my_A and my_K: your public value and your key with Bob, in your own group."""
checks.check_my_numbers(my, my_A, my_K)
### BEGIN HIDDEN TESTS
checks.hidden_my_numbers(STUDENT_ID, my_A, my_K)
### END HIDDEN TESTS

# %% lang=ru grade_id=check_my_numbers en=20f3f6ca
"""Проверка my_A и my_K: ваше открытое значение и общий с Бобом ключ в вашей собственной группе."""
checks.check_my_numbers(my, my_A, my_K)
### BEGIN HIDDEN TESTS
checks.hidden_my_numbers(STUDENT_ID, my_A, my_K)
### END HIDDEN TESTS

# %% [markdown] id=cell-026
# ## 4 · Why Eve cannot go back from `A` to `a`
#
# Eve knows `p`, `g` and `A`. To find `K` she needs `a`: the `x` with `g^x mod p = A`,
# the *discrete logarithm*. Going forward is one `pow`. Going back, the values jump
# around with no slope to follow:

# %% [markdown] lang=ru id=cell-026 en=49f53d0d
# ## 4 · Почему Ева не может вернуться от `A` к `a`
#
# Ева знает `p`, `g` и `A`. Чтобы найти `K`, ей нужно `a` — такое `x`, что `g^x mod p = A`,
# то есть *дискретный логарифм*. Вперёд — один вызов `pow`. Назад — значения скачут
# без всякого наклона, по которому можно было бы идти:

# %% id=cell-027
plots.powers(groups.TOY, big=groups.small_safe_prime_group(16));

# %% [markdown] id=cell-028
# Compare `x²`, which only grows: there you can find `x` from `x²` by bisection in a few steps.
# Here the only general plan is to try `x = 1, 2, 3, …` until the power matches:

# %% [markdown] lang=ru id=cell-028 en=14e49a95
# Сравните с `x²`, который только растёт: там `x` по `x²` находится делением пополам за несколько шагов.
# Здесь же единственный общий план — пробовать `x = 1, 2, 3, …`, пока степень не совпадёт:

# %% id=cell-029
def brute_force_log(group, y):
    """Find x with g^x mod p == y by trying x = 1, 2, 3, ... (Eve's plan)."""
    value = group.g
    for x in range(1, group.q + 1):
        if value == y:
            return x
        value = value * group.g % group.p
    raise ValueError("y is not a power of g")

# %% lang=ru id=cell-029 en=29914dd2
def brute_force_log(group, y):
    """Найти x, для которого g^x mod p == y, перебирая x = 1, 2, 3, ... (план Евы)."""
    value = group.g
    for x in range(1, group.q + 1):
        if value == y:
            return x
        value = value * group.g % group.p
    raise ValueError("y is not a power of g")

# %% id=cell-030
brute_force_log(groups.TOY, A)    # Eve recovers Alice's a = 6 at once

# %% lang=ru id=cell-030 en=852f2806
brute_force_log(groups.TOY, A)    # Ева сразу находит секрет Алисы a = 6

# %% [markdown] id=cell-031
# That is instant for `p = 23` — and for `p = 7`, `151` or any toy prime in the course's starter code.
# How does the time grow with the size of `p`?
# The next cell times the attack on groups of 8, 9, 10, … bits.
# Each run looks for the secret Eve would try last, so each time is "try every exponent".
# It stops after about 4 seconds.

# %% [markdown] lang=ru id=cell-031 en=6fc38a98
# Для `p = 23` это мгновенно — как и для `p = 7`, `151` и любого учебного простого числа из стартового кода курса.
# Как растёт время с размером `p`?
# Следующая ячейка замеряет атаку на группах из 8, 9, 10, … битов.
# Каждый прогон ищет секрет, который Ева попробовала бы последним, так что каждое время — это «перебрать все показатели».
# Замер останавливается примерно через 4 секунды.

# %% id=cell-032
def time_attack(bits):
    group = groups.small_safe_prime_group(bits)
    y = pow(group.g, group.q - 1, group.p)     # the secret that is tried last
    start = time.perf_counter()
    brute_force_log(group, y)
    return time.perf_counter() - start

# %% lang=ru id=cell-032 en=17aaee97
def time_attack(bits):
    group = groups.small_safe_prime_group(bits)
    y = pow(group.g, group.q - 1, group.p)     # секрет, который перебор найдёт последним
    start = time.perf_counter()
    brute_force_log(group, y)
    return time.perf_counter() - start

# %% id=cell-033
budget = 4.0                                    # seconds for the whole experiment
bar = widgets.progress(total=40, description="4 s budget")
display(bar)
sizes, seconds = [], []
for bits in range(8, 41):
    if seconds and sum(seconds) + 2.2 * seconds[-1] > budget:
        break                                   # one more bit would cost about twice as much
    seconds.append(time_attack(bits))
    sizes.append(bits)
    bar.value = min(40, int(10 * sum(seconds)))
vocabulary.sentence("timed {first} to {last} bits in {seconds:.1f} s",
                    first=sizes[0], last=sizes[-1], seconds=sum(seconds))

# %% lang=ru id=cell-033 en=6fd67336
budget = 4.0                                    # секунд на весь эксперимент
bar = widgets.progress(total=40, description="4 s budget")
display(bar)
sizes, seconds = [], []
for bits in range(8, 41):
    if seconds and sum(seconds) + 2.2 * seconds[-1] > budget:
        break                                   # ещё один бит стоил бы примерно вдвое дороже
    seconds.append(time_attack(bits))
    sizes.append(bits)
    bar.value = min(40, int(10 * sum(seconds)))
vocabulary.sentence("timed {first} to {last} bits in {seconds:.1f} s",
                    first=sizes[0], last=sizes[-1], seconds=sum(seconds))

# %% id=cell-034
plots.brute_force_times(sizes, seconds, target_bits=2048);

# %% [markdown] id=cell-035
# On the left, a straight line on a log scale: **every extra bit doubles the time**.
# On the right, the same line carried on to a 2048-bit `p`:

# %% [markdown] lang=ru id=cell-035 en=064448a0
# Слева — прямая в логарифмическом масштабе: **каждый лишний бит удваивает время**.
# Справа — та же прямая, продолженная до 2048-битного `p`:

# %% id=cell-036
plots.format_log10_seconds(plots.extrapolate_log10_seconds(sizes, seconds, 2048))

# %% [markdown] id=cell-037
# To be fair to Eve: real 2048-bit groups use 256-bit secrets (2^255 possible ones, about 2^254 tries on average,
# still around 10^60 years), and there are smarter attacks than trying everything.
# The best known one (the number field sieve) needs roughly 2^103 to 2^112 steps for 2048 bits (the estimates differ),
# which is why 2048 bits is today's minimum.
# Toy primes like 23 fall to any of them in microseconds.

# %% [markdown] lang=ru id=cell-037 en=6de2eccf
# Справедливости ради: в настоящих 2048-битных группах секреты 256-битные (всего их 2^255, в среднем около 2^254 попыток,
# это всё равно порядка 10^60 лет), и существуют атаки умнее полного перебора.
# Лучшая из известных (решето числового поля) требует для 2048 битов примерно от 2^103 до 2^112 шагов (оценки расходятся),
# поэтому 2048 битов — сегодняшний минимум.
# Учебные простые числа вроде 23 любая из них ломает за микросекунды.

# %% [markdown] id=cell-038
# ## 5 · Real keys, kept on disk (task 1)
#
# A real key lives in a 2048-bit group. We use `ffdhe2048` from RFC 7919, the same group TLS 1.3 offers.
# `keys.load_or_create` loads the key `alice` if it exists and otherwise makes and saves it.
# The files go to your keys folder, `keys.default_dir()`: `~/.labcrypto/keys` in your home (or the folder
# named by the environment variable `LABCRYPTO_KEYS`), made so that only you can open it. Every notebook uses
# that one folder, and it is outside the notebooks' folders: handing in a notebook never hands in your key.

# %% [markdown] lang=ru id=cell-038 en=2af4fb6b
# ## 5 · Настоящие ключи, хранимые на диске (задание 1)
#
# Настоящий ключ живёт в 2048-битной группе. Мы берём `ffdhe2048` из RFC 7919 — ту же группу, что предлагает TLS 1.3.
# `keys.load_or_create` загружает ключ `alice`, если он есть, а иначе создаёт и сохраняет его.
# Файлы попадают в вашу папку ключей, `keys.default_dir()`: `~/.labcrypto/keys` в домашней папке (или папка из
# переменной окружения `LABCRYPTO_KEYS`), открыть которую можете только вы. Все блокноты пользуются этой одной
# папкой, и она вне папок с блокнотами: сдавая блокнот, вы никогда не сдаёте свой ключ.

# %% id=cell-039
groups.FFDHE2048

# %% id=cell-040
key_dir = keys.default_dir()
alice = keys.load_or_create("alice", key_dir)
alice

# %% [markdown] id=cell-041
# Two text files. The private key is readable only by you (`-rw-------`, mode 0600). Never print its content:
# a cell's output is saved in the notebook, and the notebook is what you hand in. What is safe to show —
# where it is, its mode, its first line (a warning) and the fingerprint of its public half:

# %% [markdown] lang=ru id=cell-041 en=2817fac9
# Два текстовых файла. Закрытый ключ может читать только владелец (`-rw-------`, режим 0600). Никогда не выводите
# его содержимое: вывод ячейки сохраняется в блокноте, а блокнот вы сдаёте. Показать можно то, что безопасно, —
# где он лежит, его режим, первую строку (предупреждение) и отпечаток открытой половины:

# %% id=cell-042
key_file = key_dir / "alice.key"
{"file": str(key_file), "mode": oct(key_file.stat().st_mode & 0o777),
 "first line": key_file.read_text().splitlines()[0], "fingerprint": alice.fingerprint}

# %% id=cell-043
widgets.file_view(key_dir / "alice.pub")

# %% [markdown] id=cell-044
# A fresh object read from the files is the same key — the fingerprint
# (a short hash of the public value, as `ssh` shows) matches:

# %% [markdown] lang=ru id=cell-044 en=d09edb6a
# Новый объект, прочитанный из файлов, — тот же самый ключ: отпечаток
# (короткий хеш открытого значения, как его показывает `ssh`) совпадает:

# %% id=cell-045
reloaded = keys.load("alice", key_dir)
{"fingerprint": reloaded.fingerprint, "same key": reloaded.fingerprint == alice.fingerprint}

# %% [markdown] id=cell-046
# Run the key cell again (or restart the kernel and run it): the key is *reused*, and the file is not even rewritten.
# That is what lets a server recognise Alice tomorrow (notebook 03).

# %% [markdown] lang=ru id=cell-046 en=9ba2819e
# Выполните ячейку с ключом ещё раз (или перезапустите ядро и выполните её): ключ *переиспользуется*, а файл даже не перезаписывается.
# Именно это позволит серверу узнать Алису завтра (блокнот 03).

# %% id=cell-047
written = (key_dir / "alice.key").stat().st_mtime_ns
again = keys.load_or_create("alice", key_dir)
{"same key": again.fingerprint == alice.fingerprint,
 "file untouched": (key_dir / "alice.key").stat().st_mtime_ns == written}

# %% [markdown] id=cell-048
# ## 6 · Exercise: a key file of your own
#
# Write `load_or_create_key(path)`, the heart of `keys.load_or_create`:
#
# * if `path` exists, read the private number from it and rebuild the pair:
#   `keys.KeyPair(group, private, pow(group.g, private, group.p))`;
# * otherwise make a pair with `keys.generate(group)`, write its private number to `path`
#   as text (for example `f"private: {pair.private:#x}"`) in a file **only you can read**, and return the pair.
#
# To create a file with mode 0600 from the start:
# `os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)` gives a file descriptor; `open(fd, "w")` writes to it.
# Known mistakes from earlier years: a new key on every run, a file that holds `K` or `A` instead of `a`, a key file anyone can read.

# %% [markdown] lang=ru id=cell-048 en=17d21609
# ## 6 · Упражнение: свой файл ключа
#
# Напишите `load_or_create_key(path)` — сердцевину `keys.load_or_create`:
#
# * если `path` существует, прочитайте из него закрытое число и восстановите пару:
#   `keys.KeyPair(group, private, pow(group.g, private, group.p))`;
# * иначе создайте пару через `keys.generate(group)`, запишите её закрытое число в `path`
#   текстом (например, `f"private: {pair.private:#x}"`) в файл, **который можете читать только вы**, и верните пару.
#
# Чтобы файл с режимом 0600 создавался таким с самого начала:
# `os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)` даёт файловый дескриптор, а `open(fd, "w")` пишет в него.
# Ошибки прошлых лет: новый ключ при каждом запуске, файл, где лежит `K` или `A` вместо `a`, файл ключа, который может прочитать кто угодно.

# %% solution grade_id=load_or_create_key
def load_or_create_key(path, group=groups.FFDHE2048):
    """Return the key pair kept in the text file `path`, creating the file if needed."""
    ### BEGIN SOLUTION
    path = Path(path)
    if path.exists():
        text = path.read_text()
        private = keys.parse_number(text.split(":", 1)[1])
        return keys.KeyPair(group, private, pow(group.g, private, group.p))
    pair = keys.generate(group)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(fd, "w") as file:
        file.write(f"private: {pair.private:#x}\n")
    return pair
    ### END SOLUTION

# %% lang=ru grade_id=load_or_create_key en=31ada80b
def load_or_create_key(path, group=groups.FFDHE2048):
    """Вернуть пару ключей из текстового файла `path`; если файла нет — создать его."""
    ### BEGIN SOLUTION
    path = Path(path)
    if path.exists():
        text = path.read_text()
        private = keys.parse_number(text.split(":", 1)[1])
        return keys.KeyPair(group, private, pow(group.g, private, group.p))
    pair = keys.generate(group)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(fd, "w") as file:
        file.write(f"private: {pair.private:#x}\n")
    return pair
    ### END SOLUTION

# %% tests grade_id=check_load_or_create_key points=2
"""Check load_or_create_key: private file, reused on the next run, a different key per file."""
checks.check_load_or_create_key(load_or_create_key)
### BEGIN HIDDEN TESTS
checks.hidden_key_file(load_or_create_key)
### END HIDDEN TESTS

# %% lang=ru grade_id=check_load_or_create_key en=80bb55e5
"""Проверка load_or_create_key: закрытый файл, повторное использование при следующем запуске, свой ключ в каждом файле."""
checks.check_load_or_create_key(load_or_create_key)
### BEGIN HIDDEN TESTS
checks.hidden_key_file(load_or_create_key)
### END HIDDEN TESTS

# %% [markdown] id=cell-051
# ## Summary
#
# * `p` and `g` are public; each side's secret is its exponent (`a`, `b`). Only `A = g^a mod p` and `B = g^b mod p` travel.
# * Each side combines its own secret with the other's public value, `K = B^a = A^b mod p`: the same number, never sent.
# * Going back from `A` to `a` costs about twice as much per extra bit: instant for `p = 23`, hopeless for 2048 bits.
# * A long-term key is a private file (mode 0600) that holds `a`, is reused on every run, and is never shared or committed.
#
# **Control questions this prepares for.** *How does SSL work in practice?* — the key-exchange half:
# TLS 1.3 runs this exchange (in `ffdhe2048` or, more often, on an elliptic curve) to agree on a key nobody sent,
# with a fresh key pair on both sides for every connection: a TLS server's long-term key is not a Diffie-Hellman key but a signing key, in its certificate.
# Also: which numbers of Diffie-Hellman are secret, and why a 23 or a 7 is no protection.
#
# **Clean up.** This notebook started no servers; the cell below stops any that a re-run left behind (it is the same in every notebook).
# Your key stays in your keys folder (`keys.default_dir()`) for the next notebooks.

# %% [markdown] lang=ru id=cell-051 en=f452490d
# ## Итоги
#
# * `p` и `g` открыты; секрет каждой стороны — её показатель степени (`a`, `b`). По сети передаются только `A = g^a mod p` и `B = g^b mod p`.
# * Каждая сторона объединяет свой секрет с открытым значением другой: `K = B^a = A^b mod p` — одно и то же число, которое никто не отправлял.
# * Путь назад, от `A` к `a`, с каждым лишним битом дорожает примерно вдвое: мгновенно для `p = 23`, безнадёжно для 2048 битов.
# * Долговременный ключ — это закрытый файл (режим 0600), в котором лежит `a`. Он переиспользуется при каждом запуске, его никому не передают и не коммитят в репозиторий.
#
# **К каким контрольным вопросам это готовит.** *Как работает SSL на практике?* — та половина, что про обмен ключами:
# TLS 1.3 выполняет этот же обмен (в `ffdhe2048` или, чаще, на эллиптической кривой), чтобы договориться о ключе, который никто не отправлял,
# причём обе стороны заводят новую пару ключей для каждого соединения: долговременный ключ TLS-сервера — не ключ Диффи — Хеллмана, а ключ подписи из его сертификата.
# А ещё: какие числа в протоколе Диффи — Хеллмана секретны и почему 23 или 7 ни от чего не защищают.
#
# **Уборка.** Этот блокнот не запускал серверов; ячейка ниже останавливает те, что мог оставить повторный запуск (она одинакова во всех блокнотах).
# Ваш ключ остаётся в вашей папке ключей (`keys.default_dir()`) для следующих блокнотов.

# %% id=cell-052
from labcrypto.server import stop_all

stop_all()

# %% [markdown] id=cell-053
# **Next:** [02 · The exchange, by hand and over TCP](02_exchange.ipynb) — the same exchange over a socket (then, in 02b, a chat that Eve cannot read).

# %% [markdown] lang=ru id=cell-053 en=6fda191c
# **Дальше:** [02 · Обмен вручную и по TCP](02_exchange.ipynb) — тот же обмен через сокет (а в блокноте 02b — чат, который Ева не может прочитать).

