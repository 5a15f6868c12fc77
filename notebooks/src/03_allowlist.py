# Source of notebooks/03_allowlist.ipynb: build it with `python tools/build_notebooks.py`.
# Cells start at `# %%` markers; tools/build_notebooks.py explains their roles and ids.

# %% [markdown] id=cell-000
# # 03 · Who may join: the allowlist
#
# *The server keeps a list of the public keys it will talk to, and drops everyone else before saying anything secret (task 3).*
#
# **After this notebook you will be able to**
#
# 1. keep an allowlist as a CSV file of public keys, add and revoke students while the server runs;
# 2. say at which step of the handshake an unknown client is dropped, and show that nothing encrypted reached it;
# 3. run a man-in-the-middle attack on an unauthenticated exchange, and show how pinning and the allowlist stop it;
# 4. explain why holding a public key is not enough to pass as its owner.
#
# **You need:** notebooks 01, 02 and 02b. **Time:** about 90 minutes, and about 3 more for the optional *Going further* at the end.

# %% [markdown] lang=ru id=cell-000 en=7342bf42
# # 03 · Кто может войти: список разрешённых ключей
#
# *Сервер хранит список открытых ключей, с которыми готов разговаривать, и отключает всех остальных, не сказав им ничего секретного (задание 3).*
#
# **После этого блокнота вы сможете**
#
# 1. вести список разрешённых ключей в CSV-файле открытых ключей, добавлять и отзывать студентов, пока сервер работает;
# 2. сказать, на каком шаге рукопожатия отключается неизвестный клиент, и показать, что ничего зашифрованного до него не дошло;
# 3. провести атаку «человек посередине» на неаутентифицированный обмен и показать, как её останавливают закрепление ключа и список разрешённых ключей;
# 4. объяснить, почему открытого ключа недостаточно, чтобы выдать себя за его владельца.
#
# **Что нужно:** блокноты 01, 02 и 02b. **Время:** около 80 минут и ещё около 3 минут на необязательный раздел «Для желающих» в конце.

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
import csv
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from labcrypto import cli, groups, keys, wiretap
from labcrypto.allowlist import Allowlist
from labcrypto.chat import ChatClient, ChatServer
from labcrypto.errors import HandshakeError, LabCryptoError
from labcrypto.handshake import ClientHandshake, ServerHandshake, encode_message
from labcrypto.keys import PublicKey
from labcrypto.lab import checks_03_allowlist as checks
from labcrypto.lab import plots, vocabulary, widgets

# %% [markdown] id=cell-003
# ## The cast
#
# | | has | on the allowlist? |
# |---|---|---|
# | **the server** | its key pair, the allowlist file | — |
# | **alice**, **bob** | their key pairs; gave the instructor their `.pub` files | yes |
# | **carol** | her key pair; never sent her `.pub` | no |
# | **mallory** (on the wire) | her own key pair, everybody's public keys | no |
#
# Every key lives in your keys folder (`keys.default_dir()`), as in notebook 01: running the cell again reuses them.

# %% [markdown] lang=ru id=cell-003 en=717d28e5
# ## Действующие лица
#
# | | что есть | в списке? |
# |---|---|---|
# | **сервер** | его пара ключей, файл списка разрешённых ключей | — |
# | **alice**, **bob** | их пары ключей; свои файлы `.pub` они отдали преподавателю | да |
# | **carol** | её пара ключей; свой `.pub` так и не прислала | нет |
# | **mallory** (на линии) | её собственная пара ключей, открытые ключи всех остальных | нет |
#
# Все ключи лежат в вашей папке ключей (`keys.default_dir()`), как в блокноте 01: повторный запуск ячейки их переиспользует.

# %% id=cell-004
key_dir = keys.default_dir()
server_key = keys.load_or_create("chat-server", key_dir)
people = {name: keys.load_or_create(name, key_dir) for name in ("alice", "bob", "carol", "mallory")}
{name: pair.fingerprint for name, pair in people.items()}

# %% [markdown] id=cell-005
# ## 1 · The allowlist is a file you can open
#
# A student gives the instructor a `.pub` file — the public half only, safe to send by mail:

# %% [markdown] lang=ru id=cell-005 en=e63e9457
# ## 1 · Список разрешённых ключей — это файл, который можно открыть
#
# Студент отдаёт преподавателю файл `.pub` — только открытую половину, её можно спокойно прислать по почте:

# %% id=cell-006
widgets.file_view(key_dir / "alice.pub")

# %% [markdown] id=cell-007
# The instructor adds it to the class's allowlist, one row per student: a name, the public key, a comment
# (`labcrypto allow add` keeps it as `allowlist.csv` in the instructor's keys folder). This notebook keeps its own
# list next to itself, in `allowlist.csv`.
# This cell starts the list from scratch (so re-running it is safe) and adds alice and bob from their `.pub` files. Carol is not added.

# %% [markdown] lang=ru id=cell-007 en=0ad0c2ad
# Преподаватель добавляет его в список разрешённых ключей группы, по строке на студента: имя, открытый ключ, комментарий
# (`labcrypto allow add` хранит его как `allowlist.csv` в папке ключей преподавателя). Этот блокнот держит свой
# список рядом с собой, в `allowlist.csv`.
# Эта ячейка начинает список с нуля (поэтому её можно перезапускать) и добавляет alice и bob из их файлов `.pub`. А carol в список не добавлена.

# %% id=cell-008
allow_path = Path("allowlist.csv")
allow_path.unlink(missing_ok=True)
allowlist = Allowlist(allow_path)
for name in ("alice", "bob"):
    allowlist.add(name, keys.load_public(key_dir / f"{name}.pub"), comment="lab group A")
widgets.file_view(allow_path)

# %% [markdown] id=cell-009
# Open `allowlist.csv` in the file browser on the left, or in a spreadsheet: it is plain CSV.
# The key column is what counts; the name is only a label (and, in notebook 05, the name of the home folder).
#
# > **Why public keys, and not IP addresses or passwords?** An address says where packets came from, not who sent them:
# > every client of a lab machine is `127.0.0.1` (course mistake 9). A list of shared secrets would be a list of passwords for anyone who reads it.
# > A public key is safe to write down, and only the holder of the matching private key can finish a handshake with it.
#
# The same file from the instructor's command line:

# %% [markdown] lang=ru id=cell-009 en=334ccbf1
# Откройте `allowlist.csv` в файловом браузере слева или в электронной таблице: это обычный CSV.
# Значение имеет столбец с ключом; имя — только подпись (а в блокноте 05 — ещё и имя домашней папки).
#
# > **Почему открытые ключи, а не IP-адреса или пароли?** Адрес говорит, откуда пришли пакеты, а не кто их отправил:
# > все клиенты на учебной машине — это `127.0.0.1` (типичная ошибка № 9). Список общих секретов был бы списком паролей для любого, кто его прочтёт.
# > Открытый ключ можно спокойно записать, а завершить рукопожатие с ним может только владелец парного закрытого ключа.
#
# Тот же файл из командной строки преподавателя:

# %% id=cell-010
cli.main(["allow", "list", "--allowlist", str(allow_path)]);

# %% [markdown] id=cell-011
# ## 2 · Three students knock at once
#
# The chat room of notebook 02b, now with the allowlist. Eve's wiretap sits in front of it so that we can see each connection on the wire.
# The server's key is pinned by every client (`server_key=`).

# %% [markdown] lang=ru id=cell-011 en=fe185064
# ## 2 · Трое студентов стучатся одновременно
#
# Комната чата из блокнота 02b, теперь со списком разрешённых ключей. Перед ней стоит прослушка Евы, чтобы мы видели каждое соединение на линии.
# Ключ сервера закреплён у каждого клиента (`server_key=`).

# %% id=cell-012
room = ChatServer(server_key, allowlist, name="03-room").start()
tap = wiretap.Wiretap(room.address, name="03-tap").start()
room, tap

# %% [markdown] id=cell-013
# Alice, bob and carol connect **at the same time**, each in a thread of its own (the assignment asks for several clients;
# the server runs one thread per connection). Each thread only returns what happened; nothing prints from a thread.

# %% [markdown] lang=ru id=cell-013 en=9244dd31
# Все трое — alice, bob и carol — подключаются **одновременно**, каждый в своём потоке. Задание 3 требует: «Проверьте правильность работы на нескольких разных клиентах»;
# сервер обслуживает каждое соединение в отдельном потоке. Каждый поток только возвращает, что произошло; из потоков ничего не печатается.

# %% id=cell-014
def try_to_join(name):
    """Connect as `name` through the tap; return (client or None, error or None)."""
    try:
        client = ChatClient.connect(*tap.address, people[name], server_key=server_key.public_key, timeout=5)
    except LabCryptoError as exc:
        return None, exc
    return client, None


names = ["alice", "bob", "carol"]
with ThreadPoolExecutor(max_workers=3) as workers:
    outcome = dict(zip(names, workers.map(try_to_join, names), strict=True))
outcome

# %% lang=ru id=cell-014 en=d033681c
def try_to_join(name):
    """Подключиться как `name` через прослушку; вернуть (клиент или None, ошибка или None)."""
    try:
        client = ChatClient.connect(*tap.address, people[name], server_key=server_key.public_key, timeout=5)
    except LabCryptoError as exc:
        return None, exc
    return client, None


names = ["alice", "bob", "carol"]
with ThreadPoolExecutor(max_workers=3) as workers:
    outcome = dict(zip(names, workers.map(try_to_join, names), strict=True))
outcome

# %% [markdown] id=cell-015
# What crossed the wire for each of them. The tap recorded every frame; the client's hello carries its public key,
# so we can tell whose connection is whose:

# %% [markdown] lang=ru id=cell-015 en=71ec8fec
# Что прошло по линии для каждого из них. Прослушка записала каждый кадр; приветствие клиента несёт его открытый ключ,
# поэтому можно понять, чьё соединение чьё:

# %% id=cell-016
def frames_of(name):
    """The frames of the tap connection whose client hello carries `name`'s public key."""
    wanted = f"{people[name].public:#x}"
    for conn in tap.connections:
        if any(f.message and f.message.get("static") == wanted for f in conn.frames):
            return conn.frames
    return []


def step_of(frames):
    return " → ".join(f.message["type"] + (f" ({f.message['code']})" if f.message["type"] == "error" else "")
                      for f in frames if f.kind == "handshake")


time.sleep(0.3)     # let the last frames of the joins pass the tap
widgets.table([{
    "who": name,
    "on the list": allowlist.name_of(people[name].public_key) is not None,
    "result": (vocabulary.sentence("joined as {name}", name=client.name) if client
               else vocabulary.sentence("dropped: {error}", error=type(error).__name__)),
    "handshake on the wire": step_of(frames_of(name)),
    "encrypted frames sent to them": sum(f.kind == "data" and f.direction == wiretap.S2C for f in frames_of(name)),
} for name, (client, error) in outcome.items()])

# %% lang=ru id=cell-016 en=6a51d2e9
def frames_of(name):
    """Кадры того соединения прослушки, в приветствии клиента которого — открытый ключ `name`."""
    wanted = f"{people[name].public:#x}"
    for conn in tap.connections:
        if any(f.message and f.message.get("static") == wanted for f in conn.frames):
            return conn.frames
    return []


def step_of(frames):
    return " → ".join(f.message["type"] + (f" ({f.message['code']})" if f.message["type"] == "error" else "")
                      for f in frames if f.kind == "handshake")


time.sleep(0.3)     # даём последним кадрам подключений пройти через прослушку
widgets.table([{
    "who": name,
    "on the list": allowlist.name_of(people[name].public_key) is not None,
    "result": (vocabulary.sentence("joined as {name}", name=client.name) if client
               else vocabulary.sentence("dropped: {error}", error=type(error).__name__)),
    "handshake on the wire": step_of(frames_of(name)),
    "encrypted frames sent to them": sum(f.kind == "data" and f.direction == wiretap.S2C for f in frames_of(name)),
} for name, (client, error) in outcome.items()])

# %% [markdown] id=cell-017
# Carol was dropped **at the first step**: the server read her hello, looked up her key, and answered with a plain `error` —
# no `server_hello`, no session keys, not one encrypted byte. Her client says why, in words:

# %% [markdown] lang=ru id=cell-017 en=3427ddcc
# Клиента carol отключили **на первом же шаге**: сервер прочитал её приветствие, поискал её ключ и ответил простым `error` —
# без `server_hello`, без ключей сеанса, без единого зашифрованного байта. Её клиент объясняет причину словами:

# %% id=cell-018
outcome["carol"][1]

# %% [markdown] id=cell-019
# The server's log of the same moment (it logs the key's fingerprint, so the instructor can tell who tried):

# %% [markdown] lang=ru id=cell-019 en=762d6f8d
# Журнал сервера в тот же момент (в нём отпечаток ключа, так что преподаватель видит, кто пытался войти):

# %% id=cell-020
widgets.table([{"kind": e.kind, "text": e.text} for e in room.events if e.kind in ("join", "rejected")], max_width=150)

# %% [markdown] id=cell-021
# The two conversations side by side: alice's full handshake, carol's two messages.

# %% [markdown] lang=ru id=cell-021 en=a0906df1
# Два разговора рядом: полное рукопожатие alice и два сообщения carol.

# %% id=cell-022
def wire_steps(frames, limit=6):
    return [("client" if f.direction == wiretap.C2S else "server",
             wiretap.describe(f.payload)[:70]) for f in frames[:limit]]

plots.sequence_diagram(wire_steps(frames_of("carol")), title="carol: refused at her hello");

# %% id=cell-023
plots.sequence_diagram(wire_steps(frames_of("alice")), title="alice: handshake, then ciphertext");

# %% [markdown] id=cell-024
# ## 3 · Why bother? The man in the middle
#
# Turn the protection off for a moment: a room **without** an allowlist, and alice **without** a pinned server key.
# Mallory's wiretap now plays the server to alice and alice to the server (`wiretap.ManInTheMiddle`): two handshakes, both with her own key.
# Secure mode does not help: AES-GCM with a key shared with Mallory is a secret shared with Mallory.

# %% [markdown] lang=ru id=cell-024 en=0b0b2927
# ## 3 · Зачем всё это? «Человек посередине»
#
# Отключим на минуту защиту: комната **без** списка разрешённых ключей и alice **без** закреплённого ключа сервера.
# Прослушка Мэллори теперь изображает сервер перед alice и alice перед сервером (`wiretap.ManInTheMiddle`): два рукопожатия, оба — с её собственным ключом.
# Защищённый режим не помогает: AES-GCM с ключом, общим с Мэллори, — это секрет, общий с Мэллори.

# %% id=cell-025
open_room = ChatServer(server_key, allowlist=None, name="03-open-room").start()
mallory = wiretap.ManInTheMiddle(people["mallory"])      # she uses her own key pair
mitm_tap = wiretap.Wiretap(open_room.address, policy=mallory, name="03-mitm-tap").start()
alice = ChatClient.connect(*mitm_tap.address, people["alice"], known_servers=False, timeout=5)
alice.send("my password for the lab machines is hunter2")
[m.text for m in alice.iter_messages(timeout=0.5) if m.kind == "message"]

# %% lang=ru id=cell-025 en=56c5b413
open_room = ChatServer(server_key, allowlist=None, name="03-open-room").start()
mallory = wiretap.ManInTheMiddle(people["mallory"])      # она пользуется своей парой ключей
mitm_tap = wiretap.Wiretap(open_room.address, policy=mallory, name="03-mitm-tap").start()
alice = ChatClient.connect(*mitm_tap.address, people["alice"], known_servers=False, timeout=5)
alice.send("my password for the lab machines is hunter2")
[m.text for m in alice.iter_messages(timeout=0.5) if m.kind == "message"]

# %% [markdown] id=cell-026
# Alice got her own message back and noticed nothing. Mallory read everything, in both directions:

# %% [markdown] lang=ru id=cell-026 en=b18f6548
# Своё сообщение alice получила обратно и ничего не заметила. Мэллори прочитала всё, в обе стороны:

# %% id=cell-027
mallory.stolen_text()

# %% [markdown] id=cell-028
# The clues were there: the key alice's client accepted is Mallory's, not the server's, and the room knows alice by Mallory's fingerprint.

# %% [markdown] lang=ru id=cell-028 en=622115da
# Улики были: клиент alice принял ключ Мэллори, а не сервера, и комната знает alice по отпечатку Мэллори.

# %% id=cell-029
{"server's real key": server_key.fingerprint,
 "key alice talked to": alice.channel.session.peer_key.fingerprint,
 "mallory's key": people["mallory"].fingerprint,
 "alice's name in the room": alice.name}

# %% id=cell-030
alice.close()

# %% [markdown] id=cell-031
# ### The same attack, with pinning and the allowlist on
#
# Alice pins the server's key, and the room checks the allowlist. Each side reports exactly what went wrong:

# %% [markdown] lang=ru id=cell-031 en=5884b116
# ### Та же атака — с закреплением ключа и списком разрешённых ключей
#
# Теперь alice закрепляет ключ сервера, а комната сверяется со списком. Каждая сторона точно сообщает, что пошло не так:

# %% id=cell-032
mallory = wiretap.ManInTheMiddle(people["mallory"])
mitm_tap = wiretap.Wiretap(room.address, policy=mallory, name="03-mitm-tap").start()
try:
    ChatClient.connect(*mitm_tap.address, people["alice"], server_key=server_key.public_key, timeout=5)
except LabCryptoError as exc:
    alice_error = exc
alice_error

# %% id=cell-033
time.sleep(0.2)
vocabulary.labelled({"the server logged": [e.text for e in room.events if e.kind == "rejected"][-1],
                     "mallory's notes": mallory.failures,
                     "mallory read": mallory.stolen_text()})

# %% [markdown] id=cell-034
# Look at the fingerprint in both messages: it is **Mallory's**, not alice's. To talk to the server at all, Mallory must run a handshake
# with her own key pair (she has nobody else's private key), and her key is not on the list.
# Pinning catches her from the other side: she would have to show alice the server's key, and she cannot finish a handshake with it.

# %% [markdown] lang=ru id=cell-034 en=4a10ab81
# Посмотрите на отпечаток в обоих сообщениях: он принадлежит **Мэллори**, а не alice. Чтобы вообще говорить с сервером, Мэллори должна пройти рукопожатие
# со своей парой ключей (чужих закрытых ключей у неё нет), а её ключа в списке нет.
# Закрепление ключа ловит её с другой стороны: ей пришлось бы показать alice ключ сервера, а завершить рукопожатие с ним она не может.

# %% [markdown] id=cell-036
# Either defence alone would stop this attacker (*Going further* at the end tries all four combinations): pinning protects alice,
# the allowlist protects the server. Use both — an attacker who only wants to fool alice does not need the server at all, and then only pinning helps.
#
# ### Malicious values: 1 and p−1
#
# Instead of her own key, Mallory could rewrite the public value in a hello to `1` or `p − 1`.
# Then `K` is known without any private key:

# %% [markdown] lang=ru id=cell-036 en=6fee735d
# Любая из двух защит по отдельности остановила бы этого злоумышленника (в разделе «Для желающих» в конце проверены все четыре сочетания):
# закрепление ключа защищает alice, список разрешённых ключей — сервер. Используйте обе: злоумышленнику, который хочет обмануть только alice,
# сервер вообще не нужен, и тогда помогает только закрепление.
#
# ### Вредоносные значения: 1 и p−1
#
# Вместо своего ключа Мэллори может заменить открытое значение в приветствии на `1` или `p − 1`.
# Тогда `K` известен без всякого закрытого ключа:

# %% id=cell-037
p = groups.FFDHE2048.p
a = people["alice"].private
pow(1, a, p), pow(p - 1, a, p) in (1, p - 1)

# %% [markdown] id=cell-038
# Both sides validate every public value before using it (`groups.validate_public`, notebook 01), so the handshake stops:

# %% [markdown] lang=ru id=cell-038 en=e6cca4ce
# Обе стороны проверяют каждое открытое значение, прежде чем им пользоваться (`groups.validate_public`, блокнот 01), поэтому рукопожатие останавливается:

# %% id=cell-039
def inject(value, direction):
    """Mallory replaces the public value in one hello; who refuses it?"""
    middle = wiretap.Wiretap(room.address, policy=wiretap.InjectPublicValue(value, direction), name="03-inject-tap").start()
    try:
        ChatClient.connect(*middle.address, people["alice"], server_key=server_key.public_key, timeout=5)
    except LabCryptoError as exc:
        return {"value": value, "in the hello of": wiretap.DIRECTIONS[direction].split(" →")[0],
                "refused by": "the server" if direction == wiretap.C2S else "alice",
                "error": f"{type(exc).__name__}: {exc}"}
    return {"value": value, "refused by": "nobody!"}

widgets.table([inject(v, d) for v in (1, "p-1") for d in (wiretap.C2S, wiretap.S2C)], max_width=120)

# %% lang=ru id=cell-039 en=cd97ee10
def inject(value, direction):
    """Мэллори подменяет открытое значение в одном приветствии; кто его отвергнет?"""
    middle = wiretap.Wiretap(room.address, policy=wiretap.InjectPublicValue(value, direction), name="03-inject-tap").start()
    try:
        ChatClient.connect(*middle.address, people["alice"], server_key=server_key.public_key, timeout=5)
    except LabCryptoError as exc:
        return {"value": value, "in the hello of": wiretap.DIRECTIONS[direction].split(" →")[0],
                "refused by": "the server" if direction == wiretap.C2S else "alice",
                "error": f"{type(exc).__name__}: {exc}"}
    return {"value": value, "refused by": "nobody!"}

widgets.table([inject(v, d) for v in (1, "p-1") for d in (wiretap.C2S, wiretap.S2C)], max_width=120)

# %% [markdown] id=dh-server
# ### Exercise: the server's half of the exchange
#
# In notebook 02 you wrote the client of the course's exchange, which checks everything the server sends. Now write the server, which must check everything a client sends: the client is whoever connected.
# Write `dh_server(sock, group)`, which
#
# 1. speaks first: draws its secret `b` with `secrets` (`group.random_exponent(secrets.randbelow)`, a new one for every connection) and sends one JSON frame `{"p": ..., "g": ..., "B": ...}` with `write_frame`;
# 2. reads the client's frame with `read_frame(sock)` and takes `A` from its JSON (never `pickle`);
# 3. refuses, with `ValueError`, an `A` that `groups.validate_public(group, A)` refuses, and any frame that is not JSON holding an integer `A`;
# 4. returns `K = A^b mod p`, and sends nothing more: `K` never travels.
#
# The check is the client over TCP on 127.0.0.1, every case on every run: fair (its frame whole, one byte per segment, glued to a second message),
# then hostile (`A` = 0, 1, `p-1`, `p+1`, outside `g`'s subgroup, a pickle, not JSON, no integer `A`, a 4 GB length, a client that hangs up early).

# %% [markdown] lang=ru id=dh-server en=7d117684
# ### Упражнение: серверная половина обмена
#
# В блокноте 02 вы написали клиента обмена из курса, который проверяет всё, что присылает сервер. Теперь напишите сервер, который должен проверять всё, что присылает клиент: клиентом может оказаться кто угодно.
# Напишите `dh_server(sock, group)`, которая
#
# 1. говорит первой: выбирает свой секрет `b` через `secrets` (`group.random_exponent(secrets.randbelow)`, новый для каждого соединения) и отправляет один кадр JSON `{"p": ..., "g": ..., "B": ...}` через `write_frame`;
# 2. читает кадр клиента через `read_frame(sock)` и берёт `A` из его JSON (никакого `pickle`);
# 3. с `ValueError` отказывается от `A`, которое отвергает `groups.validate_public(group, A)`, и от любого кадра, в котором нет JSON с целым `A`;
# 4. возвращает `K = A^b mod p` и больше ничего не отправляет: `K` никогда не передаётся.
#
# Проверка играет роль клиента по TCP на 127.0.0.1, и каждый случай проверяется при каждом запуске. Сначала честно: кадр целиком, по одному байту в сегменте, склеенный со вторым сообщением.
# Потом враждебно: `A` = 0, 1, `p-1`, `p+1`, вне подгруппы `g`, pickle, не JSON, нет целого `A`, длина в 4 ГБ, клиент, который отключается раньше времени.

# %% solution grade_id=dh_server
import json
import secrets

from labcrypto.channel import read_frame, write_frame


def dh_server(sock, group):
    """The server's half of the exchange: send (p, g, B), read A, check it, return K."""
    ### BEGIN SOLUTION
    b = group.random_exponent(secrets.randbelow)
    write_frame(sock, json.dumps({"p": group.p, "g": group.g, "B": pow(group.g, b, group.p)}).encode())
    hello = json.loads(read_frame(sock))
    A = hello.get("A") if isinstance(hello, dict) else None
    if not isinstance(A, int):
        raise ValueError("the client's frame holds no integer A")
    groups.validate_public(group, A)
    return pow(A, b, group.p)
    ### END SOLUTION

# %% lang=ru grade_id=dh_server en=9b6d2eb3
import json
import secrets

from labcrypto.channel import read_frame, write_frame


def dh_server(sock, group):
    """Серверная половина обмена: отправить (p, g, B), прочитать A, проверить его, вернуть K."""
    ### BEGIN SOLUTION
    b = group.random_exponent(secrets.randbelow)
    write_frame(sock, json.dumps({"p": group.p, "g": group.g, "B": pow(group.g, b, group.p)}).encode())
    hello = json.loads(read_frame(sock))
    A = hello.get("A") if isinstance(hello, dict) else None
    if not isinstance(A, int):
        raise ValueError("the client's frame holds no integer A")
    groups.validate_public(group, A)
    return pow(A, b, group.p)
    ### END SOLUTION

# %% tests grade_id=check_dh_server points=3
"""Check dh_server against a client on 127.0.0.1: cut and glued segments, a new b each time, K never sent, hostile clients refused."""
checks.check_dh_server(dh_server)
### BEGIN HIDDEN TESTS
checks.hidden_dh_server(dh_server)
### END HIDDEN TESTS

# %% lang=ru grade_id=check_dh_server en=ffc01963
"""Проверка dh_server клиентом на 127.0.0.1: разрезанные и склеенные сегменты, новое b при каждом обмене, K не отправляется, враждебные клиенты отвергаются."""
checks.check_dh_server(dh_server)
### BEGIN HIDDEN TESTS
checks.hidden_dh_server(dh_server)
### END HIDDEN TESTS

# %% [markdown] id=cell-040
# ## 4 · Knowing a public key is not enough
#
# Public keys are public: Mallory has alice's `alice.pub`. What if she presents **alice's** public key with her own private number?
# The allowlist check passes — it *is* alice's key. Step by step, with the handshake objects of notebook 02:

# %% [markdown] lang=ru id=cell-040 en=5a5f747e
# ## 4 · Знать открытый ключ недостаточно
#
# Открытые ключи открыты: у Мэллори есть `alice.pub`. Что если она предъявит открытый ключ **alice** вместе со своим закрытым числом?
# Проверка по списку пройдёт — это *действительно* ключ alice. По шагам, с объектами рукопожатия из блокнота 02:

# %% id=cell-041
fake_alice = keys.KeyPair(groups.FFDHE2048, private=people["mallory"].private, public=people["alice"].public)
fake_client = ClientHandshake(fake_alice, expected_server_key=server_key.public_key)
real_server = ServerHandshake(server_key, allow=allowlist.is_allowed)
server_hello, server_finished = real_server.receive(fake_client.start())
real_server.client_key == people["alice"].public_key      # the server believes it is alice

# %% lang=ru id=cell-041 en=c94fad08
fake_alice = keys.KeyPair(groups.FFDHE2048, private=people["mallory"].private, public=people["alice"].public)
fake_client = ClientHandshake(fake_alice, expected_server_key=server_key.public_key)
real_server = ServerHandshake(server_key, allow=allowlist.is_allowed)
server_hello, server_finished = real_server.receive(fake_client.start())
real_server.client_key == people["alice"].public_key      # сервер верит, что это alice

# %% [markdown] id=cell-042
# Now each side computes `K`. The server: `K = A^b mod p` with alice's `A`. Mallory: `K = B^m mod p` with her own `m` —
# a different number, because only alice's secret `a` gives `B^a = A^b`. Mallory's client finds out first:
# the server's proof (an HMAC with keys from the server's `K`) does not match hers.

# %% [markdown] lang=ru id=cell-042 en=0b9e6a58
# Теперь каждая сторона вычисляет `K`. Сервер: `K = A^b mod p` с `A` от alice. Мэллори: `K = B^m mod p` со своим `m` —
# это другое число, потому что `B^a = A^b` даёт только секрет alice `a`. Клиент Мэллори узнаёт об этом первым:
# доказательство сервера (HMAC на ключах из `K` сервера) не совпадает с её собственным.

# %% id=cell-043
try:
    fake_client.receive(server_hello) + fake_client.receive(server_finished)
except HandshakeError as exc:
    mallory_error = exc
mallory_error

# %% [markdown] id=cell-044
# She can skip that check and send a made-up proof of her own. The server's check catches it:

# %% [markdown] lang=ru id=cell-044 en=0003f902
# Она может пропустить эту проверку и отправить выдуманное доказательство. Его ловит проверка на сервере:

# %% id=cell-045
try:
    real_server.receive(encode_message({"type": "client_finished", "confirm": "00" * 32}))
except HandshakeError as exc:
    server_error = exc
server_error

# %% [markdown] id=cell-046
# Over the network the same thing happens. Mallory's real client gives up at the server's proof, so the server sees her hang up before her own proof,
# and its log says whose key she presented and that she never proved holding it. The server did send its hello and its proof,
# but no chat message: the room only starts after the client's proof.

# %% [markdown] lang=ru id=cell-046 en=95673bc1
# По сети происходит то же самое. Настоящий клиент Мэллори сдаётся на доказательстве сервера, и сервер видит, что она отключилась, не прислав своего доказательства;
# в журнале он пишет, чей ключ она предъявила и что владение им она так и не доказала. Сервер отправил своё приветствие и доказательство,
# но ни одного сообщения чата: комната открывается только после доказательства клиента.

# %% id=cell-047
try:
    ChatClient.connect(*room.address, fake_alice, server_key=server_key.public_key, timeout=5)
except LabCryptoError as exc:
    network_error = exc
time.sleep(0.2)
type(network_error).__name__, [e.text for e in room.events if e.kind == "handshake-failed"][-1:]

# %% [markdown] id=cell-048
# To pass as alice, Mallory needs alice's **private** key `a` — finding it from `A` is the discrete logarithm of notebook 01.
# That is why the private key file must stay private (mode `0600`, never committed), and why the allowlist can safely hold public keys.
#
# ## 5 · Revocation while the server runs
#
# Bob leaves the course. The instructor removes his row — here with the command line — and the server is **not** restarted:

# %% [markdown] lang=ru id=cell-048 en=9e179e51
# Чтобы выдать себя за alice, Мэллори нужен **закрытый** ключ alice `a`, а найти его по `A` — это дискретный логарифм из блокнота 01.
# Поэтому файл закрытого ключа должен оставаться закрытым (режим `0600`, никогда не коммитить), а в списке разрешённых ключей можно спокойно хранить открытые ключи.
#
# ## 5 · Отзыв ключа на работающем сервере
#
# Студент bob уходит с курса. Преподаватель удаляет его строку — здесь из командной строки, — и сервер **не** перезапускается:

# %% id=cell-049
cli.main(["allow", "remove", "bob", "--allowlist", str(allow_path)]);

# %% id=cell-050
try:
    ChatClient.connect(*room.address, people["bob"], server_key=server_key.public_key, timeout=5)
except LabCryptoError as exc:
    bob_error = exc
bob_error

# %% id=cell-051
room.running, room.port == tap.target[1], room.members()

# %% [markdown] id=cell-052
# The same room, the same port: it re-reads the CSV file whenever it changes on disk, so the next handshake sees the new list.
# Bob's connection from before is still in the room (the check runs at the handshake); to end it too, the server would
# have to drop members whose key left the list. Alice is not affected.
#
# ## 6 · Exercise: the allowlist check
#
# Write `is_allowed(path, key)`: read the CSV file at `path` and return `True` if the `PublicKey` `key` is on it.
#
# * Use the `csv` module (a comment may contain commas inside quotes). Columns: `name,public_key,comment`.
# * Skip the header, blank lines, lines starting with `#`, and any row whose key cannot be read — one bad row must not lock everyone out.
# * Compare **keys, not text**: `PublicKey.from_text(cell) == key`. `0x00ab`, `0xAB` and `171` are one key; searching the file for the key's text
#   finds it inside comments and inside longer keys.
# * Read the file on every call, so that a revocation counts at once.

# %% [markdown] lang=ru id=cell-052 en=77ed4741
# Та же комната, тот же порт: сервер перечитывает CSV-файл, как только тот меняется на диске, так что следующее рукопожатие видит новый список.
# Старое соединение bob всё ещё в комнате (проверка идёт при рукопожатии); чтобы завершить и его, серверу пришлось бы
# отключать участников, чей ключ исчез из списка. На alice это никак не влияет.
#
# ## 6 · Упражнение: проверка по списку
#
# Напишите `is_allowed(path, key)`: прочитайте CSV-файл по пути `path` и верните `True`, если в нём есть `PublicKey` `key`.
#
# * Пользуйтесь модулем `csv` (комментарий может содержать запятые внутри кавычек). Столбцы: `name,public_key,comment`.
# * Пропускайте заголовок, пустые строки, строки, начинающиеся с `#`, и любую строку, ключ в которой не читается: одна испорченная строка не должна запереть всех.
# * Сравнивайте **ключи, а не текст**: `PublicKey.from_text(cell) == key`. `0x00ab`, `0xAB` и `171` — один и тот же ключ, а поиск текста ключа по файлу
#   находит его и внутри комментариев, и внутри более длинных ключей.
# * Читайте файл при каждом вызове, чтобы отзыв действовал сразу.

# %% solution grade_id=is_allowed
def is_allowed(path, key):
    """True if the public key `key` has a row in the allowlist CSV file at `path`."""
    ### BEGIN SOLUTION
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            if len(row) < 2 or row[0].lstrip().startswith("#"):
                continue
            try:
                listed = PublicKey.from_text(row[1])
            except (ValueError, LabCryptoError):
                continue            # the header, or a row that cannot be read
            if listed == key:
                return True
    return False
    ### END SOLUTION

# %% lang=ru grade_id=is_allowed en=800a2505
def is_allowed(path, key):
    """True, если для открытого ключа `key` есть строка в CSV-файле списка разрешённых ключей `path`."""
    ### BEGIN SOLUTION
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            if len(row) < 2 or row[0].lstrip().startswith("#"):
                continue
            try:
                listed = PublicKey.from_text(row[1])
            except (ValueError, LabCryptoError):
                continue            # заголовок или строка, которую не прочитать
            if listed == key:
                return True
    return False
    ### END SOLUTION

# %% tests grade_id=check_is_allowed points=2
"""Check is_allowed: canonical comparison, comments, bad rows, quotes, revocation."""
checks.check_is_allowed(is_allowed)
### BEGIN HIDDEN TESTS
checks.hidden_is_allowed(is_allowed, allow_path, people)
### END HIDDEN TESTS

# %% lang=ru grade_id=check_is_allowed en=6e72ca3d
"""Проверка is_allowed: сравнение ключей, а не текста, комментарии, испорченные строки, кавычки, отзыв ключа."""
checks.check_is_allowed(is_allowed)
### BEGIN HIDDEN TESTS
checks.hidden_is_allowed(is_allowed, allow_path, people)
### END HIDDEN TESTS

# %% [markdown] id=serve-one
# ### Exercise: the check inside the handshake
#
# `is_allowed` answers a question; a server must ask it at the right moment. Write `serve_one(sock, server_key, allowlist_path)`, the server's side of one connection `sock` (a connected TCP socket), as `ChatServer` does it, with the handshake objects of section 4:
#
# 1. Make a `ServerHandshake(server_key, allow=...)` and run it: read each client frame with `read_frame(sock)`, give it to `handshake.receive(...)`, and send each message it returns with `write_frame(sock, ...)`, until `handshake.done`.
# 2. Check the client's key against the allowlist at `allowlist_path` when its hello arrives, before the server makes any key or sends anything: that is what `ServerHandshake`'s `allow` is for (section 4).
#    Look at the file at every connection: a student removed a minute ago must be refused. No file means nobody is allowed.
#    `Allowlist(allowlist_path)` does both; your `is_allowed` of section 6 works too if a missing file gives `False`.
# 3. If the handshake fails (a `LabCryptoError`: a key not on the list, or a client that cannot prove it holds its key), send the client the plain refusal `ServerHandshake.error_message(exc)`, then raise the error again.
# 4. Once the handshake is done, and only then: make `SecureChannel(sock, handshake.session)`, send `"welcome"` through it, and return it.
#
# The check plays real clients over TCP on 127.0.0.1 (its cell lists them). A refused client must get one plain refusal and nothing else:
# no server hello, no session key, not one encrypted byte.

# %% [markdown] lang=ru id=serve-one en=8c241c01
# ### Упражнение: проверка внутри рукопожатия
#
# `is_allowed` отвечает на вопрос, а сервер должен задать его в нужный момент. Напишите `serve_one(sock, server_key, allowlist_path)` — серверную сторону одного соединения `sock` (подключённого TCP-сокета), так, как это делает `ChatServer`, с объектами рукопожатия из раздела 4:
#
# 1. Создайте `ServerHandshake(server_key, allow=...)` и проведите рукопожатие: читайте каждый кадр клиента через `read_frame(sock)`, передавайте его в `handshake.receive(...)` и отправляйте каждое сообщение, которое тот вернёт, через `write_frame(sock, ...)`, пока не станет `handshake.done`.
# 2. Проверьте ключ клиента по списку из файла `allowlist_path`, когда приходит приветствие клиента, — до того как сервер создаст хоть один ключ или что-нибудь отправит: для этого у `ServerHandshake` и есть `allow` (раздел 4).
#    Заглядывайте в файл при каждом соединении: студент, которого удалили из списка минуту назад, должен получить отказ. Нет файла — значит, нельзя никому.
#    `Allowlist(allowlist_path)` умеет и то и другое; ваша `is_allowed` из раздела 6 тоже подойдёт, если при отсутствии файла она возвращает `False`.
# 3. Если рукопожатие не удалось (`LabCryptoError`: ключа нет в списке или клиент не может доказать, что владеет своим ключом), отправьте клиенту простой отказ `ServerHandshake.error_message(exc)` и снова выбросьте эту ошибку.
# 4. Когда рукопожатие завершено, и только тогда: создайте `SecureChannel(sock, handshake.session)`, отправьте через него `"welcome"` и верните его.
#
# Проверка играет роль настоящих клиентов по TCP на 127.0.0.1 (их список — в её ячейке). Клиент, которому отказано, должен получить один простой отказ
# и больше ничего: ни приветствия сервера, ни ключа сеанса, ни одного зашифрованного байта.

# %% solution grade_id=serve_one
from labcrypto.channel import SecureChannel, read_frame, write_frame
from labcrypto.handshake import ServerHandshake


def serve_one(sock, server_key, allowlist_path):
    """The server's side of one connection: the handshake with the allowlist check at the client's hello, then a welcome."""
    ### BEGIN SOLUTION
    allowlist = Allowlist(allowlist_path)           # reads the file when asked, again whenever it changes
    handshake = ServerHandshake(server_key, allow=allowlist.is_allowed)
    try:
        while not handshake.done:
            for reply in handshake.receive(read_frame(sock)):
                write_frame(sock, reply)
    except LabCryptoError as exc:
        write_frame(sock, ServerHandshake.error_message(exc))
        raise
    channel = SecureChannel(sock, handshake.session)
    channel.send("welcome")
    return channel
    ### END SOLUTION

# %% lang=ru grade_id=serve_one en=755f57f3
from labcrypto.channel import SecureChannel, read_frame, write_frame
from labcrypto.handshake import ServerHandshake


def serve_one(sock, server_key, allowlist_path):
    """Серверная сторона одного соединения: рукопожатие с проверкой по списку при приветствии клиента, затем приветствие сервера."""
    ### BEGIN SOLUTION
    allowlist = Allowlist(allowlist_path)           # читает файл по запросу и заново — всякий раз, когда он меняется
    handshake = ServerHandshake(server_key, allow=allowlist.is_allowed)
    try:
        while not handshake.done:
            for reply in handshake.receive(read_frame(sock)):
                write_frame(sock, reply)
    except LabCryptoError as exc:
        write_frame(sock, ServerHandshake.error_message(exc))
        raise
    channel = SecureChannel(sock, handshake.session)
    channel.send("welcome")
    return channel
    ### END SOLUTION

# %% tests grade_id=check_serve_one points=3
"""Check serve_one with real clients on 127.0.0.1: alice served; a stranger, a look-alike key, a revoked student and everyone without the file refused at the hello; a fake alice never served."""
checks.check_serve_one(serve_one)
### BEGIN HIDDEN TESTS
checks.hidden_serve_one(serve_one, server_key, allow_path, people)
### END HIDDEN TESTS

# %% lang=ru grade_id=check_serve_one en=1db79d51
"""Проверка serve_one настоящими клиентами на 127.0.0.1: alice обслужена; посторонний, похожий ключ, отозванный студент и все, когда файла нет, получают отказ при приветствии; поддельная alice не обслужена никогда."""
checks.check_serve_one(serve_one)
### BEGIN HIDDEN TESTS
checks.hidden_serve_one(serve_one, server_key, allow_path, people)
### END HIDDEN TESTS

# %% [markdown] id=cell-055
# ## 7 · Exercise: a new student joins
#
# Dave joins the course. Write `join_as_new_student(name, key_dir, allowlist_path, address, server_key)` that
#
# 1. makes the student's key pair in `key_dir`, or reuses it if it is there (`keys.load_or_create`);
# 2. puts its public key on the allowlist at `allowlist_path`, unless it is already there —
#    with the API (`Allowlist(path).add(name, public_key)`) or with the command line
#    (`cli.main(["allow", "add", name, str(pub_file), "--allowlist", str(allowlist_path)])`, the same as `labcrypto allow add ...` in a terminal);
# 3. connects to the chat room at `address` as that student, pinning `server_key`, and returns the `ChatClient`.
#
# Running it twice must work too: the second time, the key and the row are already there.
# The check runs your function against a real room on 127.0.0.1 with a fresh allowlist.
#
# Why pin? Without `server_key`, `ChatClient.connect` falls back to *trust on first use*: the first time it meets a server
# at an address it writes that server's key into `known_servers.csv` in your keys folder, and later refuses any other key there, as `ssh` does
# with `known_hosts`. That protects every connection but the first one, and the first one is exactly when Mallory may be in the middle.
# You were given the server's key, so pin it: then even the first connection is safe. The check refuses a join that does not pin
# (and stops it before it writes anything into your `known_servers.csv`).

# %% [markdown] lang=ru id=cell-055 en=373edd1b
# ## 7 · Упражнение: новый студент
#
# На курс приходит Dave. Напишите `join_as_new_student(name, key_dir, allowlist_path, address, server_key)`, которая
#
# 1. создаёт пару ключей студента в `key_dir` или переиспользует её, если она там уже есть (`keys.load_or_create`);
# 2. вносит его открытый ключ в список по пути `allowlist_path`, если его там ещё нет, —
#    через API (`Allowlist(path).add(name, public_key)`) или через командную строку
#    (`cli.main(["allow", "add", name, str(pub_file), "--allowlist", str(allowlist_path)])` — то же, что `labcrypto allow add ...` в терминале);
# 3. подключается к комнате чата по адресу `address` от имени этого студента, закрепив `server_key`, и возвращает `ChatClient`.
#
# Повторный вызов тоже должен работать: во второй раз и ключ, и строка уже на месте.
# Проверка запускает вашу функцию против настоящей комнаты на 127.0.0.1 с новым списком.
#
# Зачем закреплять ключ? Без `server_key` метод `ChatClient.connect` переходит к *доверию при первом подключении*: впервые встретив сервер
# по какому-то адресу, он записывает ключ этого сервера в `known_servers.csv` в вашей папке ключей, а потом отвергает по этому адресу любой другой ключ — так же поступает `ssh`
# со своим `known_hosts`. Это защищает все соединения, кроме первого, а именно в первом Мэллори и может оказаться посередине.
# Ключ сервера вам дан, поэтому закрепите его: тогда безопасно и первое соединение. Проверка не засчитывает подключение без закреплённого ключа
# (и останавливает его раньше, чем оно что-нибудь запишет в ваш `known_servers.csv`).

# %% solution grade_id=join_as_new_student
def join_as_new_student(name, key_dir, allowlist_path, address, server_key):
    """Enrol `name` (key pair + allowlist row) and return a ChatClient connected as them."""
    ### BEGIN SOLUTION
    key = keys.load_or_create(name, key_dir)
    listed = Allowlist(allowlist_path)
    if not listed.is_allowed(key.public_key):
        listed.add(name, key.public_key, comment="joined in notebook 03")
    return ChatClient.connect(*address, key, server_key=server_key, timeout=5)
    ### END SOLUTION

# %% lang=ru grade_id=join_as_new_student en=ce2ab085
def join_as_new_student(name, key_dir, allowlist_path, address, server_key):
    """Записать `name` на курс (пара ключей + строка в списке) и вернуть ChatClient, подключённый от его имени."""
    ### BEGIN SOLUTION
    key = keys.load_or_create(name, key_dir)
    listed = Allowlist(allowlist_path)
    if not listed.is_allowed(key.public_key):
        listed.add(name, key.public_key, comment="joined in notebook 03")
    return ChatClient.connect(*address, key, server_key=server_key, timeout=5)
    ### END SOLUTION

# %% tests grade_id=check_join_as_new_student points=2
"""Check join_as_new_student: key reused, row added once (others kept), joins the room as the student."""
checks.check_join_as_new_student(join_as_new_student)
### BEGIN HIDDEN TESTS
checks.hidden_join(join_as_new_student, key_dir, allow_path, room, server_key)
### END HIDDEN TESTS

# %% lang=ru grade_id=check_join_as_new_student en=ead953ea
"""Проверка join_as_new_student: ключ переиспользуется, строка добавляется один раз (остальные сохраняются), вход в комнату от имени студента."""
checks.check_join_as_new_student(join_as_new_student)
### BEGIN HIDDEN TESTS
checks.hidden_join(join_as_new_student, key_dir, allow_path, room, server_key)
### END HIDDEN TESTS

# %% [markdown] id=cell-058
# ## 8 · Exercise: in one sentence
#
# Why does the allowlist stop the man in the middle of section 3? Write one sentence in the cell below (graded by your instructor).

# %% [markdown] lang=ru id=cell-058 en=b2a2d1a1
# ## 8 · Упражнение: одним предложением
#
# Почему список разрешённых ключей останавливает «человека посередине» из раздела 3? Напишите одно предложение в ячейке ниже (его оценит преподаватель).

# %% [markdown] answer grade_id=mitm_answer points=1
# To talk to the server, the man in the middle must finish a handshake with his own key pair, because he holds no listed student's
# private key; his public key is not on the allowlist, so the server drops him at his hello, before any session key exists.

# %% [markdown] lang=ru grade_id=mitm_answer en=7038449e
# Чтобы говорить с сервером, «человек посередине» должен завершить рукопожатие со своей парой ключей, ведь закрытых ключей студентов из списка у него нет;
# его открытого ключа в списке нет, поэтому сервер отключает его на первом же приветствии, когда ещё не выработан ни один ключ сеанса.

# %% [markdown] id=cell-060
# ## Summary
#
# * The allowlist is a CSV file of **public keys**; the server checks the client's key inside the handshake and drops an unknown client at its hello, before anything encrypted.
# * Several clients connect at once, each in its own server thread; each is judged by its key, not by its address.
# * Without authentication, Diffie-Hellman is a secret shared with whoever answered, even in secure mode. Pinning (the client knows the server's key) and the allowlist (the server knows the clients' keys) stop the man in the middle; validation stops 1 and p−1.
# * A public key alone proves nothing: finishing the handshake needs the matching private key. Revoking a key is editing the file; the running server sees it at the next handshake.
#
# **Control question this prepares for: how does SSL work in practice?** A TLS server shows a **certificate**: its public key, its name, and the signature of a certificate authority
# that the client already trusts, so the client can check the key without having pinned it in advance. Our allowlist and pinning skip that step: each side knows the other's raw key beforehand.
# The server then proves that it holds the certificate's private key by *signing* the handshake transcript (CertificateVerify); ours proves it
# by mixing its static key into the Diffie-Hellman terms, as Noise and WireGuard do, so that only the key's holder can compute the Finished HMAC.
# Client certificates (mutual TLS) are the certified version of this notebook's allowlist.
#
# **Clean up.** Close the clients and stop every server and tap this notebook started:

# %% [markdown] lang=ru id=cell-060 en=0828c477
# ## Итоги
#
# * Список разрешённых ключей — это CSV-файл **открытых ключей**. Сервер проверяет ключ клиента внутри рукопожатия и отключает неизвестного клиента на его приветствии, до всякого шифрования.
# * Несколько клиентов подключаются одновременно, каждого обслуживает свой поток сервера; о каждом судят по ключу, а не по адресу.
# * Без аутентификации обмен Диффи — Хеллмана даёт секрет, общий с тем, кто ответил, даже в защищённом режиме. «Человека посередине» останавливают закрепление ключа (клиент знает ключ сервера) и список разрешённых ключей (сервер знает ключи клиентов); проверка значений останавливает 1 и p−1.
# * Один лишь открытый ключ ничего не доказывает: чтобы завершить рукопожатие, нужен парный закрытый ключ. Отозвать ключ — значит отредактировать файл; работающий сервер увидит это при следующем рукопожатии.
#
# **К какому контрольному вопросу это готовит: как работает SSL на практике?** TLS-сервер предъявляет **сертификат**: свой открытый ключ, своё имя и подпись удостоверяющего центра,
# которому клиент уже доверяет. Так клиент может проверить ключ, не закрепляя его заранее. Наш список и закрепление ключа пропускают этот шаг: каждая сторона заранее знает «голый» ключ другой.
# Затем сервер доказывает, что владеет закрытым ключом сертификата: он *подписывает* хеш записи рукопожатия (CertificateVerify). Наш сервер доказывает это иначе:
# его статический ключ входит в слагаемые Диффи — Хеллмана, как в Noise и WireGuard, поэтому HMAC сообщения Finished может вычислить только владелец ключа.
# Клиентские сертификаты (взаимный TLS, mutual TLS) — это заверенная версия списка разрешённых ключей из этого блокнота.
#
# **Уборка.** Закройте клиентов и остановите все серверы и прослушки, запущенные этим блокнотом:

# %% id=cell-061
from labcrypto.server import running_servers, stop_all

for client, _ in outcome.values():
    if client is not None:
        client.close()
stop_all()
running_servers()

# %% [markdown] id=cell-062
# **Next:** [04 · Two ports](04_two_ports.ipynb) — the handshake on one port, the conversation on another, with ports from a pool.

# %% [markdown] lang=ru id=cell-062 en=34f8284c
# **Дальше:** [04 · Два порта](04_two_ports.ipynb) — рукопожатие на одном порту, разговор на другом, порты из пула.

# %% [markdown] id=further
# ## Going further (optional): all four combinations
#
# Nothing above depends on this section, and nothing in it is graded. Section 3 ran the man in the middle with both defences off, then with both on.
# Here are all four combinations, each a fresh attempt with a fresh room and a fresh Mallory:

# %% [markdown] lang=ru id=further en=99c2ea36
# ## Для желающих: все четыре сочетания
#
# От этого раздела ничего выше не зависит, и в нём ничего не оценивается. В разделе 3 «человек посередине» работал сначала при выключенных защитах, потом при обеих включённых.
# Здесь все четыре сочетания, каждое — новая попытка с новой комнатой и новой Мэллори:

# %% id=cell-035
def attack(pin, with_allowlist):
    """Alice talks to the server through Mallory; return a row: who noticed what."""
    target = ChatServer(server_key, allowlist if with_allowlist else None, name="03-target").start()
    eve = wiretap.ManInTheMiddle(people["mallory"])
    middle = wiretap.Wiretap(target.address, policy=eve, name="03-mitm-tap").start()
    try:
        client = ChatClient.connect(*middle.address, people["alice"], known_servers=False, timeout=5,
                                    server_key=server_key.public_key if pin else None)
    except LabCryptoError as exc:
        alice_saw = type(exc).__name__
    else:
        client.send("my password is hunter2")
        list(client.iter_messages(timeout=0.3))
        client.close()
        alice_saw = "nothing wrong"
    time.sleep(0.1)
    return {"pinning": pin, "allowlist": with_allowlist, "alice sees": alice_saw,
            "server logs": next((e.kind for e in target.events if e.kind in ("rejected", "handshake-failed")), "a normal join"),
            "mallory read": eve.stolen_text(wiretap.C2S) or "nothing"}

widgets.table([attack(pin, listed) for pin in (False, True) for listed in (False, True)])

# %% lang=ru id=cell-035 en=52696949
def attack(pin, with_allowlist):
    """Клиент alice говорит с сервером через Мэллори; вернуть строку таблицы: кто что заметил."""
    target = ChatServer(server_key, allowlist if with_allowlist else None, name="03-target").start()
    eve = wiretap.ManInTheMiddle(people["mallory"])
    middle = wiretap.Wiretap(target.address, policy=eve, name="03-mitm-tap").start()
    try:
        client = ChatClient.connect(*middle.address, people["alice"], known_servers=False, timeout=5,
                                    server_key=server_key.public_key if pin else None)
    except LabCryptoError as exc:
        alice_saw = type(exc).__name__
    else:
        client.send("my password is hunter2")
        list(client.iter_messages(timeout=0.3))
        client.close()
        alice_saw = "nothing wrong"
    time.sleep(0.1)
    return {"pinning": pin, "allowlist": with_allowlist, "alice sees": alice_saw,
            "server logs": next((e.kind for e in target.events if e.kind in ("rejected", "handshake-failed")), "a normal join"),
            "mallory read": eve.stolen_text(wiretap.C2S) or "nothing"}

widgets.table([attack(pin, listed) for pin in (False, True) for listed in (False, True)])

# %% [markdown] id=further-end
# Pinning alone protects alice, the allowlist alone protects the server. Stop the rooms these attempts started:

# %% [markdown] lang=ru id=further-end en=706704ee
# Одно закрепление ключа защищает alice, один список разрешённых ключей — сервер. Остановите комнаты, которые запустили эти попытки:

# %% id=further-stop
stop_all()
running_servers()
