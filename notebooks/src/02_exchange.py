# Source of notebooks/02_exchange.ipynb: build it with `python tools/build_notebooks.py`.
# Cells start at `# %%` markers; tools/build_notebooks.py explains their roles and ids.

# %% [markdown] id=cell-000
# # 02 · The exchange, by hand and over TCP
#
# *The handshake step by step, frames on a TCP stream, and the course's Diffie-Hellman exchange done right over a real socket. Notebook 02b turns it into a chat that Eve cannot read.*
#
# **After this notebook you will be able to**
#
# 1. step through a handshake by hand and say what each message carries and what Eve learns from it;
# 2. frame messages on a TCP stream so that none is ever cut or glued to the next;
# 3. write the client of the course's exchange over TCP, which refuses every group and public value it must not use and never sends `K`.
#
# **You need:** notebook 01 and the threaded-server lab. **Time:** about 45 minutes.

# %% [markdown] lang=ru id=cell-000 en=fd1c83cd
# # 02 · Обмен вручную и по TCP
#
# *Рукопожатие по шагам, кадры в потоке TCP и обмен Диффи — Хеллмана из курса, сделанный правильно, через настоящий сокет. Блокнот 02b превращает его в чат, который Ева не может прочитать.*
#
# **После этого блокнота вы сможете**
#
# 1. пройти рукопожатие вручную и сказать, что несёт каждое сообщение и что из него узнаёт Ева;
# 2. делить поток TCP на кадры так, чтобы ни одно сообщение не обрезалось и не склеилось со следующим;
# 3. написать клиента обмена из курса по TCP, который отвергает любую группу и любое открытое значение, которыми нельзя пользоваться, и никогда не отправляет `K`.
#
# **Что нужно:** блокнот 01 и лабораторная о многопоточном сервере. **Время:** около 40 минут.

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
import json
import secrets
import struct

from labcrypto import groups, keys
from labcrypto.channel import read_frame, write_frame
from labcrypto.handshake import ClientHandshake, ServerHandshake
from labcrypto.lab import checks_02_exchange as checks

# %% [markdown] id=cell-005
# ## The cast
#
# | | knows | sends |
# |---|---|---|
# | **Alice** (the client) | her secret `a`; `p`, `g` | `A = g^a mod p`, then encrypted messages |
# | **Bob** (the server) | his secret `b`; `p`, `g` | `B = g^b mod p`, then encrypted messages |
# | **Eve** (on the wire) | everything that is sent: `p`, `g`, `A`, `B`, every ciphertext byte | nothing (for now) |
#
# Alice and Bob each end up with `K`; Eve does not. Let us watch it happen.

# %% [markdown] lang=ru id=cell-005 en=76b6ddbf
# ## Действующие лица
#
# | | знает | отправляет |
# |---|---|---|
# | **Алиса** (клиент) | свой секрет `a`; `p`, `g` | `A = g^a mod p`, затем зашифрованные сообщения |
# | **Боб** (сервер) | свой секрет `b`; `p`, `g` | `B = g^b mod p`, затем зашифрованные сообщения |
# | **Ева** (на линии) | всё, что передаётся: `p`, `g`, `A`, `B`, каждый байт шифртекста | ничего (пока) |
#
# В итоге у Алисы и у Боба есть `K`, а у Евы — нет. Посмотрим, как это происходит.

# %% [markdown] id=cell-006
# ## 1 · The handshake by hand
#
# The handshake lives in two objects that take bytes in and give bytes out, with no sockets.
# *We* carry the bytes between them, one cell at a time.
# Toy mode first (`p = 23`), so that every number is small enough to read.

# %% [markdown] lang=ru id=cell-006 en=ad1e803b
# ## 1 · Рукопожатие вручную
#
# Рукопожатие живёт в двух объектах. Они принимают байты и отдают байты, сокетов у них нет.
# Байты между ними носим *мы*, по одной ячейке за раз.
# Сначала учебный режим (`p = 23`): все числа в нём маленькие, их легко прочитать.

# %% id=cell-007
alice_toy = keys.generate(groups.TOY)
bob_toy = keys.generate(groups.TOY)
for _ in range(100):                 # the toy group has only 19 keys: draw again if they match
    if bob_toy.public != alice_toy.public:
        break
    bob_toy = keys.generate(groups.TOY)
client = ClientHandshake(alice_toy, mode="toy")
server = ServerHandshake(bob_toy, mode="toy")

# %% lang=ru id=cell-007 en=26759339
alice_toy = keys.generate(groups.TOY)
bob_toy = keys.generate(groups.TOY)
for _ in range(100):                 # в учебной группе всего 19 ключей: если совпали, выбираем заново
    if bob_toy.public != alice_toy.public:
        break
    bob_toy = keys.generate(groups.TOY)
client = ClientHandshake(alice_toy, mode="toy")
server = ServerHandshake(bob_toy, mode="toy")

# %% id=cell-008
hello = client.start()
hello               # exactly these bytes travel: readable JSON, with A in "static"

# %% lang=ru id=cell-008 en=0d6a5eca
hello = client.start()
hello               # по сети идут ровно эти байты: читаемый JSON, A — в поле "static"

# %% [markdown] id=cell-009
# The course's starter code sent `(p, g, A)` with `pickle`. Here it is JSON:
# unpickling bytes from the network runs whatever code the sender put in them (course mistake 7).
# (The course text writes "(p, q, A)": it means `(p, g, A)`. Here the group's name stands for `p` and `g`.)

# %% [markdown] lang=ru id=cell-009 en=e7eb4027
# Стартовый код курса отправлял `(p, g, A)` через `pickle`. Здесь это JSON:
# `pickle.loads` на байтах из сети выполнит любой код, который туда положил отправитель (типичная ошибка № 7).
# (В тексте курса открытый ключ клиента записан как «(p, q, A)» — имеется в виду `(p, g, A)`. Здесь `p` и `g` заменяет имя группы.)

# %% id=cell-010
server_hello, server_finished = server.receive(hello)
server_hello        # B and a fresh random nonce

# %% lang=ru id=cell-010 en=ff563e42
server_hello, server_finished = server.receive(hello)
server_hello        # B и новое случайное число (nonce)

# %% id=cell-011
server_finished     # a proof (HMAC) that Bob derived the keys

# %% lang=ru id=cell-011 en=f8953cd8
server_finished     # доказательство (HMAC), что Боб выработал ключи

# %% id=cell-012
[client_finished] = client.receive(server_hello) + client.receive(server_finished)
server.receive(client_finished)
client.session.numbers, server.session.numbers

# %% [markdown] id=cell-013
# Both sides hold the same `K`, and it never travelled.
#
# > **Reading the course text.** "The client encrypts with its private key and the server's public key;
# > the server decrypts first with its private key, then with the client's public key" sounds like
# > RSA's double encryption. What really happens: each side combines **its own private key** with
# > **the other's public key** into the same `K` (`K = B^a = A^b mod p`), derives a symmetric key from `K`,
# > and encrypts **once** with it.
#
# In toy mode that symmetric key is the course's Caesar shift, `K mod 256`:

# %% [markdown] lang=ru id=cell-013 en=62fe1618
# У обеих сторон один и тот же `K`, и по сети он не передавался.
#
# > **Читаем текст курса.** «Клиент посылает сообщение серверу, шифруя его закрытым ключом и открытым ключом сервера. Сервер принимает сообщение, расшифровывает его сначала своим закрытым ключом, а потом — открытым ключом клиента». Это похоже на двойное шифрование в RSA.
# > На самом деле происходит другое: каждая сторона объединяет **свой закрытый ключ** с **открытым ключом другой стороны** и получает один и тот же `K` (`K = B^a = A^b mod p`).
# > Из `K` она вырабатывает симметричный ключ и шифрует им сообщение **один раз**.
#
# В учебном режиме этот симметричный ключ — сдвиг шифра Цезаря из курса, `K mod 256`:

# %% id=cell-014
alice_sends, _ = client.session.ciphers()
_, bob_reads = server.session.ciphers()
captured = alice_sends.seal(b"meet me at the library at noon")
captured

# %% id=cell-015
bob_reads.open(captured)

# %% [markdown] id=cell-016
# ## 2 · Exercise: frames on a stream
#
# TCP carries a stream of bytes, not messages. One `send` can arrive as three `recv` results,
# and two sends can arrive as one. Taking one `recv(1024)` as one message is the most common bug
# in this lab (course mistake 6). A delimiter such as `\n` fails too, because it can occur inside the data.
#
# The fix is a frame: a 4-byte big-endian length, then the bytes.
# Write `send_msg(sock, data)` (one `sendall` of header + data) and `recv_msg(sock)`.
# `recv_msg` must:
#
# * read exactly 4 header bytes, then exactly `length` bytes, looping over `recv` as needed;
# * raise `ValueError` if `length > MAX_MESSAGE` *before* reading the payload;
# * raise `ConnectionError` if `recv` returns `b""` (the peer closed) in the middle.
#
# The check runs your pair over a real TCP connection on 127.0.0.1 against a hostile peer.

# %% [markdown] lang=ru id=cell-016 en=78827ecc
# ## 2 · Упражнение: кадры в потоке
#
# TCP передаёт поток байтов, а не сообщения. Один `send` может прийти тремя результатами `recv`, а два `send` — одним.
# Считать один `recv(1024)` одним сообщением — самая частая ошибка в этой лабораторной (типичная ошибка № 6).
# Разделитель вроде `\n` тоже не спасает: он может встретиться внутри данных.
#
# Решение — кадр: длина в 4 байтах (big-endian, старший байт первым), затем сами байты.
# Напишите `send_msg(sock, data)` (один `sendall` заголовка вместе с данными) и `recv_msg(sock)`.
# `recv_msg` должна:
#
# * прочитать ровно 4 байта заголовка, затем ровно `length` байтов, вызывая `recv` в цикле столько раз, сколько нужно;
# * выбросить `ValueError`, если `length > MAX_MESSAGE`, *до* чтения содержимого;
# * выбросить `ConnectionError`, если `recv` вернул `b""` (собеседник закрыл соединение) на середине.
#
# Проверка запускает вашу пару функций на настоящем TCP-соединении на 127.0.0.1 против враждебного собеседника.

# %% solution grade_id=framing
MAX_MESSAGE = 1 << 20    # 1 MiB
HEADER = struct.Struct("!I")


def send_msg(sock, data):
    """Send one message: a 4-byte big-endian length, then the bytes (one sendall)."""
    ### BEGIN SOLUTION
    sock.sendall(HEADER.pack(len(data)) + data)
    ### END SOLUTION


def recv_msg(sock):
    """Receive one whole message sent by send_msg."""
    ### BEGIN SOLUTION
    def recv_exactly(count):
        buffer = bytearray()
        while len(buffer) < count:
            chunk = sock.recv(count - len(buffer))
            if not chunk:
                raise ConnectionError(f"connection closed after {len(buffer)} of {count} bytes")
            buffer += chunk
        return bytes(buffer)

    (length,) = HEADER.unpack(recv_exactly(HEADER.size))
    if length > MAX_MESSAGE:
        raise ValueError(f"a {length}-byte message is over the {MAX_MESSAGE}-byte limit")
    return recv_exactly(length)
    ### END SOLUTION

# %% lang=ru grade_id=framing en=0d778f7a
MAX_MESSAGE = 1 << 20    # 1 МиБ
HEADER = struct.Struct("!I")


def send_msg(sock, data):
    """Отправить одно сообщение: длину в 4 байтах (big-endian), затем байты (один sendall)."""
    ### BEGIN SOLUTION
    sock.sendall(HEADER.pack(len(data)) + data)
    ### END SOLUTION


def recv_msg(sock):
    """Принять одно сообщение, отправленное send_msg, целиком."""
    ### BEGIN SOLUTION
    def recv_exactly(count):
        buffer = bytearray()
        while len(buffer) < count:
            chunk = sock.recv(count - len(buffer))
            if not chunk:
                raise ConnectionError(f"connection closed after {len(buffer)} of {count} bytes")
            buffer += chunk
        return bytes(buffer)

    (length,) = HEADER.unpack(recv_exactly(HEADER.size))
    if length > MAX_MESSAGE:
        raise ValueError(f"a {length}-byte message is over the {MAX_MESSAGE}-byte limit")
    return recv_exactly(length)
    ### END SOLUTION

# %% tests grade_id=check_framing points=3
"""Check send_msg/recv_msg: split bytes, glued messages, binary data, a huge length, a cut."""
checks.check_framing(send_msg, recv_msg, MAX_MESSAGE)
### BEGIN HIDDEN TESTS
checks.hidden_framing(send_msg, recv_msg)
### END HIDDEN TESTS

# %% lang=ru grade_id=check_framing en=d045c814
"""Проверка send_msg/recv_msg: разрезанные байты, склеенные сообщения, двоичные данные, огромная длина, обрыв."""
checks.check_framing(send_msg, recv_msg, MAX_MESSAGE)
### BEGIN HIDDEN TESTS
checks.hidden_framing(send_msg, recv_msg)
### END HIDDEN TESTS

# %% [markdown] id=cell-019
# ### Exercise: the course's exchange over TCP, done right
#
# The course's starter code sends `(p, g, A)` with `pickle` and reads the answer with a single `recv(1024)`, with `p = 7`.
# Here is the same exchange done right, from the client's side. The server speaks first, with one frame of JSON: `{"p": ..., "g": ..., "B": ...}`.
# Write `dh_client(sock, min_bits=2048)`, which
#
# 1. reads that frame (`read_frame(sock)`, the package's version of your `recv_msg`) and `json.loads` it;
# 2. refuses, with `ValueError`, a group it must not use: `p` shorter than `min_bits` bits, `p` not prime or `(p-1)/2` not prime
#    (`groups.is_probable_prime`), and a `g` or `B` that `groups.validate_public` refuses, with `group = groups.Group("offered", p, g, (p - 1) // 2)`;
# 3. draws its secret with `secrets` (`group.random_exponent(secrets.randbelow)`) and sends `{"A": A}` as one JSON frame (`write_frame(sock, data)`);
# 4. returns `K = B^a mod p`. Never send `K`: each side computes it.
#
# The check is the server, over TCP on 127.0.0.1: fair first (its hello whole, then one byte per TCP segment, then glued to a second message in one segment),
# then hostile (a `p` that is not prime, a prime `p` whose `(p-1)/2` is not prime, a toy `p`, a `g` outside the subgroup of order `q`, `B = 1`, a `B` outside it, a `B` above `p`, a 4 GB length).
# Every hostile case runs on every run, and each is refused by one of your checks only: leave one out and the check fails every time.

# %% [markdown] lang=ru id=cell-019 en=98db8924
# ### Упражнение: обмен из курса по TCP, но правильно
#
# Стартовый код курса отправляет `(p, g, A)` через `pickle`, читает ответ одним `recv(1024)`, а `p = 7`.
# Вот тот же обмен, сделанный правильно, со стороны клиента. Сервер говорит первым: один кадр с JSON `{"p": ..., "g": ..., "B": ...}`.
# Напишите `dh_client(sock, min_bits=2048)`, которая
#
# 1. читает этот кадр (`read_frame(sock)` — версия вашей `recv_msg` из пакета) и разбирает его через `json.loads`;
# 2. с `ValueError` отказывается от группы, которой нельзя пользоваться: `p` короче `min_bits` битов, `p` не простое или `(p-1)/2` не простое (`groups.is_probable_prime`), а также от `g` или `B`, которые отвергает `groups.validate_public` с `group = groups.Group("offered", p, g, (p - 1) // 2)`;
# 3. выбирает свой секрет через `secrets` (`group.random_exponent(secrets.randbelow)`) и отправляет `{"A": A}` одним кадром JSON (`write_frame(sock, data)`);
# 4. возвращает `K = B^a mod p`. Никогда не отправляйте `K`: каждая сторона вычисляет его сама.
#
# Проверка играет роль сервера, по TCP на 127.0.0.1. Сначала честно: приветствие целиком, затем по одному байту в TCP-сегменте, затем склеенное со вторым сообщением в одном сегменте.
# Потом враждебно: `p`, который не является простым, простое `p`, у которого `(p-1)/2` не простое, учебный `p`, `g` вне подгруппы порядка `q`, `B = 1`, `B` вне её, `B` больше `p`, длина в 4 ГБ.
# Каждый враждебный случай проверяется при каждом запуске, и каждый отвергает только одна из ваших проверок: пропустите одну — и проверка не пройдёт ни разу.

# %% solution grade_id=dh_client
def dh_client(sock, min_bits=2048):
    """The client's half of the exchange: read (p, g, B), check them, send A, return K."""
    ### BEGIN SOLUTION
    hello = json.loads(read_frame(sock))
    p, g, B = hello["p"], hello["g"], hello["B"]
    if p.bit_length() < min_bits:
        raise ValueError(f"a {p.bit_length()}-bit p is too small (at least {min_bits} bits)")
    if not groups.is_probable_prime(p) or not groups.is_probable_prime((p - 1) // 2):
        raise ValueError("p is not a safe prime")
    group = groups.Group("offered", p, g, (p - 1) // 2)
    groups.validate_public(group, g)
    groups.validate_public(group, B)
    a = group.random_exponent(secrets.randbelow)
    write_frame(sock, json.dumps({"A": pow(g, a, p)}).encode())
    return pow(B, a, p)
    ### END SOLUTION

# %% lang=ru grade_id=dh_client en=0f083a74
def dh_client(sock, min_bits=2048):
    """Клиентская половина обмена: прочитать (p, g, B), проверить их, отправить A, вернуть K."""
    ### BEGIN SOLUTION
    hello = json.loads(read_frame(sock))
    p, g, B = hello["p"], hello["g"], hello["B"]
    if p.bit_length() < min_bits:
        raise ValueError(f"a {p.bit_length()}-bit p is too small (at least {min_bits} bits)")
    if not groups.is_probable_prime(p) or not groups.is_probable_prime((p - 1) // 2):
        raise ValueError("p is not a safe prime")
    group = groups.Group("offered", p, g, (p - 1) // 2)
    groups.validate_public(group, g)
    groups.validate_public(group, B)
    a = group.random_exponent(secrets.randbelow)
    write_frame(sock, json.dumps({"A": pow(g, a, p)}).encode())
    return pow(B, a, p)
    ### END SOLUTION

# %% tests grade_id=check_dh_client points=3
"""Check dh_client against a server on 127.0.0.1: cut and glued segments, K never sent, hostile groups refused."""
checks.check_dh_client(dh_client)
### BEGIN HIDDEN TESTS
checks.hidden_dh_client(dh_client)
### END HIDDEN TESTS

# %% lang=ru grade_id=check_dh_client en=7c09629b
"""Проверка dh_client против сервера на 127.0.0.1: разрезанные и склеенные сегменты, K не отправляется, враждебные группы отвергаются."""
checks.check_dh_client(dh_client)
### BEGIN HIDDEN TESTS
checks.hidden_dh_client(dh_client)
### END HIDDEN TESTS

# %% [markdown] id=summary
# ## Summary
#
# * A handshake is a few readable messages: public values, nonces and proofs. `K` itself never travels, and `p`, `g`, `A`, `B` are public.
# * TCP is a stream: every message needs a frame (length + bytes) and a receiver that loops until the frame is whole.
# * A client checks every number the server sends before using it: `p` large, prime and safe, `g` and `B` in the subgroup of order `q`. A check left out is an attack let in.
#
# **Control questions this prepares for.** *How does SSL work in practice?* TLS starts with what you just stepped through:
# a ClientHello and a ServerHello carrying Diffie-Hellman key shares and random nonces, then *Finished* messages that prove both sides derived the same keys.
# The rest of the answer — records encrypted with an AEAD such as AES-GCM — is in notebook 02b.
#
# Nothing of this notebook keeps running: the checks stopped their own servers, and the handshake above never opened a socket. The kernel agrees:

# %% [markdown] lang=ru id=summary en=a63c547f
# ## Итоги
#
# * Рукопожатие — это несколько читаемых сообщений: открытые значения, случайные числа (nonce) и доказательства. Сам `K` никогда не передаётся, а `p`, `g`, `A`, `B` открыты.
# * TCP — это поток: каждому сообщению нужен кадр (длина + байты) и получатель, который читает в цикле, пока кадр не соберётся целиком.
# * Клиент проверяет каждое число от сервера, прежде чем им пользоваться: `p` большое, простое и безопасное, `g` и `B` лежат в подгруппе порядка `q`. Пропущенная проверка — пропущенная атака.
#
# **К каким контрольным вопросам это готовит.** *Как работает SSL на практике?* TLS начинается с того, что вы только что прошли по шагам:
# ClientHello и ServerHello несут открытые значения Диффи — Хеллмана (key shares) и случайные nonce, затем сообщения *Finished* доказывают, что обе стороны получили одни и те же ключи.
# Остальная часть ответа — записи, зашифрованные AEAD-шифром, например AES-GCM, — в блокноте 02b.
#
# Ничего из этого блокнота не продолжает работать: проверки остановили свои серверы, а рукопожатие выше не открывало ни одного сокета. Ядро это подтверждает:

# %% id=cleanup
from labcrypto.server import running_servers

running_servers()       # the servers this kernel still runs: none

# %% lang=ru id=cleanup en=316a39f7
from labcrypto.server import running_servers

running_servers()       # серверы, которые ещё работают в этом ядре: ни одного

# %% [markdown] id=next
# **Next:** [02b · An encrypted conversation](02b_chat.ipynb) — a chat that Eve cannot read, the course's Caesar chat broken from captured bytes, and a message loop that knows nothing about keys.

# %% [markdown] lang=ru id=next en=1639915e
# **Дальше:** [02b · Зашифрованный разговор](02b_chat.ipynb) — чат, который Ева не может прочитать, чат курса на шифре Цезаря, взломанный по перехваченным байтам, и цикл сообщений, который ничего не знает о ключах.
