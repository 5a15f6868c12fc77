# Source of notebooks/04_two_ports.ipynb: build it with `python tools/build_notebooks.py`.
# Cells start at `# %%` markers; tools/build_notebooks.py explains their roles and ids.

# %% [markdown] id=cell-000
# # 04 · Two ports: handshake here, conversation there
#
# *The server answers on one well-known port, then moves each conversation to a port of its own, taken from a pool (task 4).*
#
# **After this notebook you will be able to**
#
# 1. follow the handoff message by message: the port and ticket as the first encrypted message, the reconnect, the conversation;
# 2. say why a stranger who reaches the data port first cannot steal the session;
# 3. handle a full pool ("busy, retry") without hanging;
# 4. write both halves of the handoff (the client's and the server's) and a thread-safe port pool that the real chat server runs on.
#
# **You need:** notebooks 02, 02b and 03. **Time:** about 90 minutes, and about 6 more for the optional *Going further* at the end.

# %% [markdown] lang=ru id=cell-000 en=c26d5993
# # 04 · Два порта: рукопожатие здесь, разговор там
#
# *Сервер отвечает на одном общеизвестном порту, а затем переводит каждый разговор на отдельный порт из пула (задание 4).*
#
# **После этого блокнота вы сможете**
#
# 1. проследить передачу соединения сообщение за сообщением: порт и билет в первом зашифрованном сообщении, повторное подключение, разговор;
# 2. объяснить, почему посторонний, первым пришедший на порт данных, не сможет украсть сеанс;
# 3. обрабатывать переполненный пул («занято, повторите») без зависания;
# 4. написать обе половины передачи соединения (клиентскую и серверную) и потокобезопасный пул портов, на котором работает настоящий сервер чата.
#
# **Что нужно:** блокноты 02, 02b и 03. **Время:** около 85 минут и ещё около 5 минут на необязательный раздел «Для желающих» в конце.

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
import hmac
import json
import secrets
import socket
import threading
import time
from pathlib import Path

from labcrypto import handoff, keys, wiretap
from labcrypto.allowlist import Allowlist
from labcrypto.channel import SecureChannel, encode_frame, read_frame
from labcrypto.chat import ChatClient, ChatServer
from labcrypto.errors import HandoffFailed, LabCryptoError, PoolExhausted
from labcrypto.handshake import decode_message, encode_message
from labcrypto.lab import checks_04_two_ports as checks
from labcrypto.lab import plots, vocabulary, widgets
from labcrypto.ports import PortPool
from labcrypto.server import connect

# %% [markdown] id=cell-003
# ## The setup
#
# Your keys (notebooks 01–03), an allowlist with alice and bob, and a **pool** of 6 ports: `PortPool.reserve(6)` finds 6 consecutive
# free ports and holds them, so that classmates on one machine do not collide (a course would fix a range such as 9100–9199).

# %% [markdown] lang=ru id=cell-003 en=21fb173e
# ## Подготовка
#
# Ваши ключи (блокноты 01–03), список разрешённых ключей с alice и bob и **пул** из 6 портов: `PortPool.reserve(6)` находит 6 подряд идущих
# свободных портов и сразу занимает их, чтобы одногруппники на одной машине не мешали друг другу (на курсе задали бы постоянный диапазон, например 9100–9199).

# %% id=cell-004
key_dir = keys.default_dir()
server_key = keys.load_or_create("chat-server", key_dir)
people = {name: keys.load_or_create(name, key_dir) for name in ("alice", "bob")}
allowlist = Allowlist(Path("allowlist-04.csv"))
for name, pair in people.items():
    if not allowlist.is_allowed(pair.public_key):
        allowlist.add(name, pair.public_key)
pool = PortPool.reserve(6)
pool

# %% [markdown] id=cell-005
# The room of notebooks 02b–03, now with the pool. `ticket_timeout=120` gives you two minutes between the cells below
# to come to the data port (the default is 10 seconds).

# %% [markdown] lang=ru id=cell-005 en=03699e77
# Комната из блокнотов 02b–03, теперь с пулом. `ticket_timeout=120` даёт вам две минуты между ячейками ниже,
# чтобы прийти на порт данных (по умолчанию — 10 секунд).

# %% id=cell-006
room = ChatServer(server_key, allowlist, pool=pool, ticket_timeout=120, name="04-room").start()
hs_tap = wiretap.Wiretap(room.address, name="04-tap-handshake").start()
room.address, hs_tap.address

# %% [markdown] id=cell-007
# ## 1 · The handoff, step by step
#
# **Step 1: the handshake, on the public port** (through Eve's tap), exactly as in notebook 02:

# %% [markdown] lang=ru id=cell-007 en=168da043
# ## 1 · Передача соединения по шагам
#
# **Шаг 1: рукопожатие на открытом порту** (через прослушку Евы), точно как в блокноте 02:

# %% id=cell-008
control = connect(*hs_tap.address, timeout=5)
channel = SecureChannel.client(control, people["alice"], expected_server_key=server_key.public_key, timeout=5)
channel

# %% [markdown] id=cell-009
# **Step 2: the first encrypted message.** The server leased a port from its pool and says where to go, with a ticket.
# Decrypted on the client side:

# %% [markdown] lang=ru id=cell-009 en=ee367025
# **Шаг 2: первое зашифрованное сообщение.** Сервер взял порт из своего пула и сообщает, куда идти, вместе с билетом.
# Расшифровано на стороне клиента:

# %% id=cell-010
offer = decode_message(channel.recv(timeout=5))
offer

# %% id=cell-011
pool.leased()       # the server holds that port: bound and listening, for us only

# %% lang=ru id=cell-011 en=b4cf6a47
pool.leased()       # сервер держит этот порт: он привязан и слушает, только для нас

# %% [markdown] id=cell-012
# **Step 3: the reconnect.** A new TCP connection to the data port — Eve taps that one too.
# The channel *moves* to the new socket (`rebind`): same keys, same message counters. The first frame there is the ticket, encrypted
# as the session's next message; `handoff.present_ticket` does both:

# %% [markdown] lang=ru id=cell-012 en=a1a89599
# **Шаг 3: повторное подключение.** Новое TCP-соединение с портом данных — Ева прослушивает и его.
# Канал *переезжает* на новый сокет (`rebind`): те же ключи, те же счётчики сообщений. Первый кадр там — билет,
# зашифрованный как очередное сообщение сеанса; `handoff.present_ticket` делает и то и другое:

# %% id=cell-013
data_tap = wiretap.Wiretap(("127.0.0.1", offer["port"]), name="04-tap-data").start()
data_sock = handoff.present_ticket(channel, *data_tap.address, offer["ticket"])
welcome = decode_message(channel.recv(timeout=5))
control.close()                                   # the handshake port has done its job
welcome

# %% lang=ru id=cell-013 en=27b97305
data_tap = wiretap.Wiretap(("127.0.0.1", offer["port"]), name="04-tap-data").start()
data_sock = handoff.present_ticket(channel, *data_tap.address, offer["ticket"])
welcome = decode_message(channel.recv(timeout=5))
control.close()                                   # порт рукопожатия своё отработал
welcome

# %% [markdown] id=cell-014
# **Step 4: the conversation**, on the data port:

# %% [markdown] lang=ru id=cell-014 en=0cf37098
# **Шаг 4: разговор** — на порту данных:

# %% id=cell-015
channel.send(encode_message({"type": "say", "text": "hello from the data port"}))
[decode_message(channel.recv(timeout=5)) for _ in range(2)]

# %% [markdown] id=cell-016
# What Eve saw on **both** connections. On the public port: the handshake in readable JSON, then one ciphertext frame —
# the port and the ticket, which she cannot read. On the data port: only ciphertext, starting with the ticket.

# %% [markdown] lang=ru id=cell-016 en=6b068d4b
# Что Ева видела на **обоих** соединениях. На открытом порту — рукопожатие в читаемом JSON, затем один кадр шифртекста:
# порт и билет, прочитать которые она не может. На порту данных — только шифртекст, начиная с билета.

# %% id=cell-017
time.sleep(0.2)
view = [dict(row, port="handshake port") for row in wiretap.eavesdropper_view(hs_tap.frames())]
view += [dict(row, port=vocabulary.sentence("data port {port}", port=offer["port"]))
         for row in wiretap.eavesdropper_view(data_tap.frames())]
widgets.table([{k: row[k] for k in ("port", "direction", "kind", "bytes", "eve sees")} for row in view], max_width=90)

# %% [markdown] id=cell-018
# Eve can guess the data port from the next TCP connection she sees, but the ticket is inside the encryption,
# and (next section) a connection without it gets nowhere. In practice, `ChatClient.connect` does all four steps for you
# (section 4 uses it). The server's own log of this session, once alice leaves:

# %% [markdown] lang=ru id=cell-018 en=22826f5b
# Ева может угадать порт данных по следующему TCP-соединению, которое увидит. Но билет спрятан внутри шифрования,
# а соединение без него (см. следующий раздел) ничего не добьётся. На практике все четыре шага за вас делает `ChatClient.connect`
# (он понадобится в разделе 4). Журнал самого сервера об этом сеансе, когда alice уходит:

# %% id=cell-020
channel.close()
time.sleep(0.2)
[e.text for e in room.events if e.kind in ("pool", "join", "leave")]

# %% [markdown] id=cell-021
# ## 2 · A stranger on the data port
#
# Mallory watches the wire. When alice gets her offer, Mallory connects to the data port **first** and sends a frame:
# the ticket frame she recorded from alice's *previous* session (she cannot make a new one: it needs this session's key).

# %% [markdown] lang=ru id=cell-021 en=c07a6b42
# ## 2 · Посторонний на порту данных
#
# Мэллори следит за линией. Когда alice получает предложение порта, Мэллори **первой** подключается к порту данных и отправляет кадр:
# кадр с билетом, записанный в *предыдущем* сеансе alice (новый она сделать не может: для этого нужен ключ этого сеанса).

# %% id=cell-022
control = connect(*room.address, timeout=5)
channel = SecureChannel.client(control, people["alice"], expected_server_key=server_key.public_key, timeout=5)
offer = decode_message(channel.recv(timeout=5))
recorded_ticket = next(f.payload for f in data_tap.frames(wiretap.C2S))     # from section 1

stranger = connect("127.0.0.1", offer["port"], timeout=5)
stranger.sendall(encode_frame(recorded_ticket))
stranger.recv(100)      # b'' : the server hung up on her

# %% lang=ru id=cell-022 en=5f4b3087
control = connect(*room.address, timeout=5)
channel = SecureChannel.client(control, people["alice"], expected_server_key=server_key.public_key, timeout=5)
offer = decode_message(channel.recv(timeout=5))
recorded_ticket = next(f.payload for f in data_tap.frames(wiretap.C2S))     # из раздела 1

stranger = connect("127.0.0.1", offer["port"], timeout=5)
stranger.sendall(encode_frame(recorded_ticket))
stranger.recv(100)      # b'' : сервер оборвал её соединение

# %% [markdown] id=cell-023
# The server tried her frame on a *copy* of the session's receive counter; it did not decrypt, so she was dropped,
# and the session is untouched. Alice comes second and still gets in:

# %% [markdown] lang=ru id=cell-023 en=a4709680
# Сервер проверил её кадр на *копии* счётчика принятых сообщений сеанса. Кадр не расшифровался, поэтому её отключили,
# а сеанс остался нетронутым. Настоящая alice приходит второй и всё равно попадает внутрь:

# %% id=cell-024
data_sock = handoff.present_ticket(channel, "127.0.0.1", offer["port"], offer["ticket"])
decode_message(channel.recv(timeout=5))["type"], [e.text for e in room.events if e.kind == "stranger"][-1:]

# %% id=cell-027
stranger.close()
channel.close()
control.close()

# %% [markdown] id=cell-028
# ## 3 · Exercise: the client's half of the handoff
#
# Write `follow_handoff(channel, host)`. The handshake is done; `channel` is open on the public port.
#
# 1. Receive the server's first message (`channel.recv(timeout=5)`, then `json.loads`).
#    If its `type` is `"busy"`, raise `PoolExhausted(...)` with the server's text. Otherwise it is `{"type": "port", "port": ..., "ticket": ...}`.
# 2. Connect to `host` at **that** port (`connect(host, port, timeout=5)`), and move the channel there: `channel.rebind(new_socket)`.
# 3. Send the ticket **through the channel**: `channel.send(json.dumps({"type": "ticket", "ticket": ...}))`.
# 4. Return the next message (the room's welcome) as a dict.

# %% [markdown] lang=ru id=cell-028 en=92f08eb0
# ## 3 · Упражнение: клиентская половина передачи соединения
#
# Напишите `follow_handoff(channel, host)`. Рукопожатие уже сделано; `channel` открыт на общем порту.
#
# 1. Примите первое сообщение сервера (`channel.recv(timeout=5)`, затем `json.loads`).
#    Если его `type` равен `"busy"`, выбросьте `PoolExhausted(...)` с текстом сервера. Иначе это `{"type": "port", "port": ..., "ticket": ...}`.
# 2. Подключитесь к `host` на **этот** порт (`connect(host, port, timeout=5)`) и переведите туда канал: `channel.rebind(new_socket)`.
# 3. Отправьте билет **через канал**: `channel.send(json.dumps({"type": "ticket", "ticket": ...}))`.
# 4. Верните следующее сообщение (приветствие комнаты) в виде словаря.

# %% solution grade_id=follow_handoff
def follow_handoff(channel, host):
    """Follow the server's port offer; return the first message on the data port (a dict)."""
    ### BEGIN SOLUTION
    offer = json.loads(channel.recv(timeout=5))
    if offer.get("type") == "busy":
        raise PoolExhausted(offer.get("text", "the server is busy"))
    data = connect(host, offer["port"], timeout=5)
    channel.rebind(data)
    channel.send(json.dumps({"type": "ticket", "ticket": offer["ticket"]}))
    return json.loads(channel.recv(timeout=5))
    ### END SOLUTION

# %% lang=ru grade_id=follow_handoff en=9b697737
def follow_handoff(channel, host):
    """Перейти на порт, который предложил сервер; вернуть первое сообщение на порту данных (dict)."""
    ### BEGIN SOLUTION
    offer = json.loads(channel.recv(timeout=5))
    if offer.get("type") == "busy":
        raise PoolExhausted(offer.get("text", "the server is busy"))
    data = connect(host, offer["port"], timeout=5)
    channel.rebind(data)
    channel.send(json.dumps({"type": "ticket", "ticket": offer["ticket"]}))
    return json.loads(channel.recv(timeout=5))
    ### END SOLUTION

# %% tests grade_id=check_follow_handoff points=3
"""Check follow_handoff against the reference server: the port, the ticket, the welcome; busy raises."""
checks.check_follow_handoff(follow_handoff)
### BEGIN HIDDEN TESTS
checks.hidden_follow_handoff(follow_handoff, room, people["bob"], server_key)
### END HIDDEN TESTS

# %% lang=ru grade_id=check_follow_handoff en=d672e801
"""Проверка follow_handoff против эталонного сервера: порт, билет, приветствие; ответ busy — исключение."""
checks.check_follow_handoff(follow_handoff)
### BEGIN HIDDEN TESTS
checks.hidden_follow_handoff(follow_handoff, room, people["bob"], server_key)
### END HIDDEN TESTS

# %% [markdown] id=offer-port-intro
# ## Exercise: the server's half of the handoff
#
# Now the other side. Write `offer_port(channel, pool, timeout=5.0)` for the server: the handshake is done, and `channel` is open on the public port.
#
# 1. Lease a port: `port, sock = pool.lease()` — a socket bound to the port and listening, as your `MyPortPool` of section 5 gives.
# 2. Make a ticket nobody can guess, new for every offer (`secrets.token_hex(32)`), and send the offer **through the channel**,
#    as the session's first encrypted message: `{"type": "port", "port": port, "ticket": ticket}`.
# 3. Until `timeout` seconds have passed, accept connections on `sock` (`sock.settimeout(what is left)`). From each, read one frame
#    (`conn.settimeout(1)`, then `read_frame(conn)`) and try it with `channel.open_candidate(frame, shows_ticket)`: it decrypts the frame
#    as the session's next message *on a copy of the counter*, and keeps it only if `shows_ticket(message)` is true.
#    `None` means a stranger: close that connection and keep waiting; the session is untouched.
# 4. For the ticket holder: `channel.rebind(conn)`, and return `(conn, port, sock)`. The port stays leased: the caller releases it when the conversation ends.
# 5. If nobody came in time, give the port back (`pool.release(port, sock)`) and raise `HandoffFailed`.

# %% [markdown] lang=ru id=offer-port-intro en=10531b8e
# ## Упражнение: серверная половина передачи соединения
#
# Теперь другая сторона. Напишите для сервера `offer_port(channel, pool, timeout=5.0)`: рукопожатие уже сделано, `channel` открыт на общем порту.
#
# 1. Возьмите порт: `port, sock = pool.lease()` — сокет, привязанный к порту и слушающий, как его выдаёт ваш `MyPortPool` из раздела 5.
# 2. Сделайте билет, который никто не угадает, новый для каждого предложения (`secrets.token_hex(32)`), и отправьте предложение **через канал**,
#    первым зашифрованным сообщением сеанса: `{"type": "port", "port": port, "ticket": ticket}`.
# 3. Пока не прошло `timeout` секунд, принимайте соединения на `sock` (`sock.settimeout(сколько осталось)`). Из каждого прочитайте один кадр
#    (`conn.settimeout(1)`, затем `read_frame(conn)`) и проверьте его через `channel.open_candidate(frame, shows_ticket)`: кадр расшифровывается
#    как очередное сообщение сеанса *на копии счётчика* и принимается, только если `shows_ticket(message)` истинно.
#    `None` означает постороннего: закройте это соединение и ждите дальше; сеанс не тронут.
# 4. Для владельца билета: `channel.rebind(conn)` и верните `(conn, port, sock)`. Порт остаётся выданным: его освободит вызывающий, когда разговор закончится.
# 5. Если за отведённое время никто не пришёл, верните порт (`pool.release(port, sock)`) и выбросьте `HandoffFailed`.

# %% solution grade_id=offer_port
def offer_port(channel, pool, timeout=5.0):
    """Offer a port of pool to the client of channel; return (conn, port, sock) once the ticket holder is in."""
    ### BEGIN SOLUTION
    port, sock = pool.lease()
    ticket = secrets.token_hex(32)
    channel.send(json.dumps({"type": "port", "port": port, "ticket": ticket}))

    def shows_ticket(message):
        try:
            shown = json.loads(message)["ticket"]
        except (ValueError, KeyError, TypeError):
            return False
        return hmac.compare_digest(str(shown).encode(), ticket.encode())

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            conn, _ = sock.accept()
        except TimeoutError:
            break
        conn.settimeout(1)
        try:
            frame = read_frame(conn)
        except (OSError, LabCryptoError):
            frame = None
        if frame is None or channel.open_candidate(frame, shows_ticket) is None:
            conn.close()                        # a stranger: drop it, keep waiting
            continue
        channel.rebind(conn)
        return conn, port, sock
    pool.release(port, sock)
    raise HandoffFailed(f"nobody came to port {port} with the ticket in time")
    ### END SOLUTION

# %% lang=ru grade_id=offer_port en=22132d15
def offer_port(channel, pool, timeout=5.0):
    """Предложить клиенту канала channel порт из pool; вернуть (conn, port, sock), когда войдёт владелец билета."""
    ### BEGIN SOLUTION
    port, sock = pool.lease()
    ticket = secrets.token_hex(32)
    channel.send(json.dumps({"type": "port", "port": port, "ticket": ticket}))

    def shows_ticket(message):
        try:
            shown = json.loads(message)["ticket"]
        except (ValueError, KeyError, TypeError):
            return False
        return hmac.compare_digest(str(shown).encode(), ticket.encode())

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            conn, _ = sock.accept()
        except TimeoutError:
            break
        conn.settimeout(1)
        try:
            frame = read_frame(conn)
        except (OSError, LabCryptoError):
            frame = None
        if frame is None or channel.open_candidate(frame, shows_ticket) is None:
            conn.close()                        # посторонний: отключить, ждать дальше
            continue
        channel.rebind(conn)
        return conn, port, sock
    pool.release(port, sock)
    raise HandoffFailed(f"nobody came to port {port} with the ticket in time")
    ### END SOLUTION

# %% tests grade_id=check_offer_port points=3
"""Check offer_port with real clients: the fair one, strangers first (no ticket, a wrong or old one, a replay), one that never comes."""
checks.check_offer_port(offer_port)
### BEGIN HIDDEN TESTS
checks.hidden_offer_port(offer_port)
### END HIDDEN TESTS

# %% lang=ru grade_id=check_offer_port en=43c66bec
"""Проверка offer_port настоящими клиентами: честный, посторонние первыми (без билета, с чужим или старым, повтор кадра), не пришедший."""
checks.check_offer_port(offer_port)
### BEGIN HIDDEN TESTS
checks.hidden_offer_port(offer_port)
### END HIDDEN TESTS

# %% [markdown] id=cell-036
# ## 4 · A full pool
#
# A pool of two ports, two clients that stay. The third is told, clearly and at once, that the server is busy
# (it may wait and try again, as the visitors of *Going further* do):

# %% [markdown] lang=ru id=cell-036 en=797d0fe1
# ## 4 · Переполненный пул
#
# Пул из двух портов и два клиента, которые не уходят. Третьему сразу и ясно отвечают, что сервер занят
# (он может подождать и попробовать снова, как это делают посетители в разделе «Для желающих»):

# %% id=cell-037
small_pool = PortPool.reserve(2)
small_room = ChatServer(server_key, allowlist, pool=small_pool, name="04-small-room").start()
stayers = [ChatClient.connect(*small_room.address, people[n], server_key=server_key.public_key, timeout=5)
           for n in ("alice", "bob")]
try:
    ChatClient.connect(*small_room.address, people["alice"], server_key=server_key.public_key, timeout=5)
except PoolExhausted as exc:
    turned_away = exc
turned_away

# %% [markdown] id=cell-040
# ## 5 · Exercise: a port pool
#
# Write a class `MyPortPool(first, last, host)` with two methods:
#
# * `lease()` returns `(port, sock)`: a port of the range that is not leased, and **the socket you bound to it and listen on**.
#   Skip a port whose `bind` fails (another program holds it), but keep it in the pool: it may be free at a later lease. If no port is free, raise `PoolExhausted` at once — never wait forever.
# * `release(port, sock)` closes the socket and puts the port back.
#
# Return the bound socket, not only its number: "bind, close, and bind again later" lets another program take the port in between (course mistake 10).
# Two threads may call `lease()` at once: keep the free ports in a list guarded by a `threading.Lock` (a pool that keeps no list and lets `bind` alone decide needs none).
# The check hammers your pool from 16 threads at once.

# %% [markdown] lang=ru id=cell-040 en=6ecd5773
# ## 5 · Упражнение: пул портов
#
# Напишите класс `MyPortPool(first, last, host)` с двумя методами:
#
# * `lease()` возвращает `(port, sock)`: ещё не выданный порт из диапазона и **сокет, который вы к нему привязали и который слушает**.
#   Пропускайте порт, если `bind` не удался (его держит другая программа), но не выбрасывайте его из пула: при следующей выдаче он может оказаться свободным. Если свободных портов нет, сразу выбросьте `PoolExhausted` — никогда не ждите бесконечно.
# * `release(port, sock)` закрывает сокет и возвращает порт в пул.
#
# Возвращайте привязанный сокет, а не только номер порта: если «привязать, закрыть и потом привязать снова», в промежутке порт может занять другая программа (типичная ошибка № 10).
# `lease()` могут вызвать два потока сразу: храните свободные порты в списке под защитой `threading.Lock` (пулу, который не ведёт списка и доверяет решение одному `bind`, блокировка не нужна).
# Проверка атакует ваш пул из 16 потоков одновременно.

# %% solution grade_id=port_pool
class MyPortPool:
    """Ports first..last on host, leased one at a time, from many threads."""

    def __init__(self, first, last, host="127.0.0.1"):
        ### BEGIN SOLUTION
        self.host = host
        self.free = list(range(first, last + 1))
        self.lock = threading.Lock()
        ### END SOLUTION

    def lease(self):
        """(port, listening socket) for a free port; PoolExhausted if there is none."""
        ### BEGIN SOLUTION
        with self.lock:
            for _ in range(len(self.free)):
                port = self.free.pop(0)
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    sock.bind((self.host, port))
                    sock.listen()
                except OSError:
                    sock.close()
                    self.free.append(port)      # held by another program: try it later
                    continue
                return port, sock
        raise PoolExhausted("no free port in the pool; try again in a moment")
        ### END SOLUTION

    def release(self, port, sock):
        """Close the socket and give the port back."""
        ### BEGIN SOLUTION
        sock.close()
        with self.lock:
            self.free.append(port)
        ### END SOLUTION

# %% lang=ru grade_id=port_pool en=72eb2604
class MyPortPool:
    """Порты first..last на host, выдаются по одному, из многих потоков."""

    def __init__(self, first, last, host="127.0.0.1"):
        ### BEGIN SOLUTION
        self.host = host
        self.free = list(range(first, last + 1))
        self.lock = threading.Lock()
        ### END SOLUTION

    def lease(self):
        """(порт, слушающий сокет) для свободного порта; PoolExhausted, если такого нет."""
        ### BEGIN SOLUTION
        with self.lock:
            for _ in range(len(self.free)):
                port = self.free.pop(0)
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    sock.bind((self.host, port))
                    sock.listen()
                except OSError:
                    sock.close()
                    self.free.append(port)      # его держит другая программа: попробуем позже
                    continue
                return port, sock
        raise PoolExhausted("no free port in the pool; try again in a moment")
        ### END SOLUTION

    def release(self, port, sock):
        """Закрыть сокет и вернуть порт в пул."""
        ### BEGIN SOLUTION
        sock.close()
        with self.lock:
            self.free.append(port)
        ### END SOLUTION

# %% tests grade_id=check_port_pool points=3
"""Check MyPortPool: busy ports skipped, listening sockets, PoolExhausted when full, 16 threads."""
checks.check_port_pool(MyPortPool)
### BEGIN HIDDEN TESTS
checks.hidden_port_pool(MyPortPool)
### END HIDDEN TESTS

# %% lang=ru grade_id=check_port_pool en=b8c8e4b6
"""Проверка MyPortPool: занятые порты пропускаются, сокеты слушают, PoolExhausted при заполненном пуле, 16 потоков."""
checks.check_port_pool(MyPortPool)
### BEGIN HIDDEN TESTS
checks.hidden_port_pool(MyPortPool)
### END HIDDEN TESTS

# %% [markdown] id=my-pool-room
# ### Your pool in the real server
#
# `ChatServer` takes your `MyPortPool` as it is. Bob's conversation below moves to one of **your** ports, and the port goes back
# to your pool when he leaves. (Until `MyPortPool` is written, the package's `PortPool` stands in.)

# %% [markdown] lang=ru id=my-pool-room en=ae51a407
# ### Ваш пул в настоящем сервере
#
# `ChatServer` принимает ваш `MyPortPool` как есть. Разговор Боба ниже переезжает на один из **ваших** портов, а порт
# возвращается в ваш пул, когда Боб уходит. (Пока `MyPortPool` не написан, его заменяет `PortPool` из пакета.)

# %% id=my-pool-room-run
spare = PortPool.reserve(3)
spare.close()                                     # your pool binds these ports itself
try:
    my_pool = MyPortPool(spare.first, spare.last)
except NotImplementedError:                       # not written yet: the package's pool stands in
    my_pool = PortPool(spare.first, spare.last)
my_room = ChatServer(server_key, allowlist, pool=my_pool, name="04-my-pool-room").start()
guest = ChatClient.connect(*my_room.address, people["bob"], server_key=server_key.public_key, timeout=5)
guest.send("hello through my own pool")
moved_to, leased_now = guest.data_port, my_room.pool.leased()
guest.close()
type(my_pool).__name__, moved_to, leased_now

# %% lang=ru id=my-pool-room-run en=373a6605
spare = PortPool.reserve(3)
spare.close()                                     # ваш пул сам привязывает эти порты
try:
    my_pool = MyPortPool(spare.first, spare.last)
except NotImplementedError:                       # ещё не написан: его заменяет пул пакета
    my_pool = PortPool(spare.first, spare.last)
my_room = ChatServer(server_key, allowlist, pool=my_pool, name="04-my-pool-room").start()
guest = ChatClient.connect(*my_room.address, people["bob"], server_key=server_key.public_key, timeout=5)
guest.send("hello through my own pool")
moved_to, leased_now = guest.data_port, my_room.pool.leased()
guest.close()
type(my_pool).__name__, moved_to, leased_now

# %% [markdown] id=cell-043
# ## Summary
#
# * The handshake happens on a public port; the **first encrypted message** carries the data port and a ticket, so only the client that did the handshake learns them.
# * On the data port the session goes on with the same keys: the ticket frame is its next message, which a stranger cannot produce, even by replaying a recorded one; she is dropped, and the session is not used up.
# * The pool hands out ports already bound and listening (no race), takes each back exactly once, and answers "busy" at once when it is empty; clients wait and retry.
#
# **Control question: how does SSL work in practice?** TLS keeps one connection, but it too has a session that outlives its connection:
# *session resumption* gives the client a ticket to continue the session on a new connection without a full handshake. A TLS ticket is the
# session's state, encrypted under a key only the server knows, so the server remembers nothing. Ours is a random token that the server looks
# up in its own table; it travels only inside the encrypted channel and is good for one connection. And a resumed TLS connection still runs a
# short handshake and gets keys of its own (from the ticket's secret, usually with a fresh Diffie-Hellman too); ours carries on with the same keys and counters.
#
# **Clean up.** Close the clients, stop the servers and taps, and close the pools:

# %% [markdown] lang=ru id=cell-043 en=11daa174
# ## Итоги
#
# * Рукопожатие идёт на открытом порту. **Первое зашифрованное сообщение** несёт порт данных и билет, поэтому узнаёт их только клиент, который прошёл рукопожатие.
# * На порту данных сеанс продолжается с теми же ключами. Кадр с билетом — очередное сообщение сеанса; посторонний не может его изготовить, даже повторив записанный кадр: его отключают, а сеанс не расходуется.
# * Пул выдаёт уже привязанные и слушающие порты (без гонки), принимает каждый обратно ровно один раз и сразу отвечает «занято», когда пуст; клиенты ждут и пробуют снова.
#
# **Контрольный вопрос: как работает SSL на практике?** TLS обходится одним соединением, но и в нём сеанс может пережить своё соединение:
# *возобновление сеанса* (session resumption) выдаёт клиенту билет, по которому он продолжает сеанс в новом соединении без полного рукопожатия.
# Билет TLS — это состояние сеанса, зашифрованное на ключе, который знает только сервер, поэтому серверу ничего не нужно помнить. Наш билет —
# случайная строка, которую сервер ищет в своей таблице; она передаётся только внутри зашифрованного канала и годится для одного соединения.
# И ещё: возобновлённое соединение TLS всё же проходит короткое рукопожатие и получает собственные ключи (из секрета билета, обычно ещё и со свежим
# обменом Диффи — Хеллмана), а наш сеанс продолжается с теми же ключами и счётчиками.
#
# **Уборка.** Закройте клиентов, остановите серверы и прослушки и закройте пулы:

# %% id=cell-044
from labcrypto.server import running_servers, stop_all

for client in stayers:
    client.close()
stop_all()
pool.close()
small_pool.close()
running_servers(), pool, small_pool

# %% [markdown] id=cell-045
# **Next:** [05 · An encrypted file server](05_ftp.ipynb) — fresh keys for every request, and a home folder nobody can leave.

# %% [markdown] lang=ru id=cell-045 en=0002d6a4
# **Дальше:** [05 · Зашифрованный файловый сервер](05_ftp.ipynb) — новые ключи для каждого запроса и домашняя папка, из которой никто не выйдет.

# %% [markdown] id=further
# ## Going further (optional): the pool under a crowd
#
# Nothing above depends on this section, and nothing in it is graded. A room with a fresh pool of 6 ports, and sixteen visitors who come and go:
# each connects (retrying after a short wait if the server says *busy*), says hello, stays a moment, and leaves.

# %% [markdown] lang=ru id=further en=b7c4cfa0
# ## Для желающих: пул под наплывом посетителей
#
# От этого раздела ничего выше не зависит, и в нём ничего не оценивается. Комната со свежим пулом из 6 портов и шестнадцать посетителей, которые приходят и уходят:
# каждый подключается (если сервер отвечает *busy* — «занято», ждёт немного и пробует снова), здоровается, задерживается на мгновение и уходит.

# %% id=further-room
import random
from concurrent.futures import ThreadPoolExecutor

from IPython.display import display

crowd_pool = PortPool.reserve(6)
crowd_room = ChatServer(server_key, allowlist, pool=crowd_pool, name="04-crowd-room").start()
crowd_room

# %% id=cell-032
def visit(number):
    """One visitor; returns how many times the server said busy (runs in a worker thread)."""
    time.sleep(0.05 * number)
    for busy in range(20):
        try:
            client = ChatClient.connect(*crowd_room.address, people["alice"], server_key=server_key.public_key, timeout=5)
        except PoolExhausted:
            time.sleep(0.1 + 0.05 * busy)       # busy: wait a moment, then retry
            continue
        client.send(f"visitor {number} says hi")
        time.sleep(random.uniform(0.2, 0.8))
        client.close()
        return busy
    return None

# %% lang=ru id=cell-032 en=5c34903a
def visit(number):
    """Один посетитель; возвращает, сколько раз сервер ответил busy (работает в рабочем потоке)."""
    time.sleep(0.05 * number)
    for busy in range(20):
        try:
            client = ChatClient.connect(*crowd_room.address, people["alice"], server_key=server_key.public_key, timeout=5)
        except PoolExhausted:
            time.sleep(0.1 + 0.05 * busy)       # занято: подождать немного и повторить
            continue
        client.send(f"visitor {number} says hi")
        time.sleep(random.uniform(0.2, 0.8))
        client.close()
        return busy
    return None

# %% id=cell-033
gauge = widgets.progress(crowd_pool.size, "ports in use")
display(gauge)
started = time.time()
with ThreadPoolExecutor(max_workers=16) as workers:
    visits = [workers.submit(visit, n) for n in range(16)]
    for _ in range(300):                       # at most 15 s
        gauge.value = len(crowd_pool.leased())
        if all(v.done() for v in visits):
            break
        time.sleep(0.05)
retries = [v.result() for v in visits]
gauge.value = len(crowd_pool.leased())
vocabulary.sentence("{visitors} visitors, {busy} busy answers, {leased} ports still leased",
                    visitors=len(retries), busy=sum(retries), leased=len(crowd_pool.leased()))

# %% lang=ru id=cell-033 en=cb83bce5
gauge = widgets.progress(crowd_pool.size, "ports in use")
display(gauge)
started = time.time()
with ThreadPoolExecutor(max_workers=16) as workers:
    visits = [workers.submit(visit, n) for n in range(16)]
    for _ in range(300):                       # не дольше 15 с
        gauge.value = len(crowd_pool.leased())
        if all(v.done() for v in visits):
            break
        time.sleep(0.05)
retries = [v.result() for v in visits]
gauge.value = len(crowd_pool.leased())
vocabulary.sentence("{visitors} visitors, {busy} busy answers, {leased} ports still leased",
                    visitors=len(retries), busy=sum(retries), leased=len(crowd_pool.leased()))

# %% [markdown] id=cell-034
# The bar showed the ports in use, read from the pool while it happened. The same story from the server's own log (`crowd_room.events`):
# each bar is one lease of one port, from the offer until the conversation ended; below, how many were in use at once,
# and the clients turned away because all 6 were taken. Every lease came back: the pool is leak-proof (a lease is released exactly once,
# when the conversation ends or the ticket expires).

# %% [markdown] lang=ru id=cell-034 en=2c097f0e
# Полоса показывала занятые порты, прочитанные из пула прямо во время работы. Та же история по журналу самого сервера (`crowd_room.events`):
# каждая полоса — одна аренда одного порта, от предложения до конца разговора. Ниже — сколько портов было занято одновременно
# и сколько клиентов получили отказ, потому что все 6 были заняты. Каждая аренда вернулась: пул не теряет порты (аренда освобождается
# ровно один раз — когда разговор закончен или билет просрочен).

# %% id=cell-035
intervals, busy = plots.lease_intervals(crowd_room.events, since=started)
plots.pool_timeline(intervals, busy, ports=range(crowd_pool.first, crowd_pool.last + 1));

# %% [markdown] id=further-door
# One more thing the reference server does: once the ticket holder is in, the data port stops listening,
# so a late comer (Mallory with a replayed ticket, say) is refused outright:

# %% [markdown] lang=ru id=further-door en=ae00e094
# Ещё одно свойство эталонного сервера: как только владелец билета вошёл, порт данных перестаёт слушать,
# поэтому опоздавшему (например, Мэллори с повторённым билетом) сразу отказывают в соединении:

# %% id=further-door-run
visitor = ChatClient.connect(*crowd_room.address, people["bob"], server_key=server_key.public_key, timeout=5)
try:
    connect("127.0.0.1", visitor.data_port, timeout=2)
except ConnectionRefusedError as exc:
    late = exc
visitor.close()
late

# %% [markdown] id=further-end
# Stop this room and close its pool:

# %% [markdown] lang=ru id=further-end en=0f130bca
# Остановите эту комнату и закройте её пул:

# %% id=further-stop
stop_all()
crowd_pool.close()
running_servers(), crowd_pool
