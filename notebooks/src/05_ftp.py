# Source of notebooks/05_ftp.ipynb: build it with `python tools/build_notebooks.py`.
# Cells start at `# %%` markers; tools/build_notebooks.py explains their roles and ids.

# %% [markdown] id=cell-000
# # 05 · An encrypted file server
#
# *The course's FTP-like server, with a full key exchange in front of every request, and a home folder nobody can leave (task 5).*
#
# **After this notebook you will be able to**
#
# 1. use an encrypted file service (`ls`, `mkdir`, `put`, `get`, `cat`, `rename`, `rm`) and check a transfer by its digest;
# 2. show that every request runs on keys of its own, and explain why one request per connection makes that natural;
# 3. demonstrate forward secrecy: a recording made with static keys is opened by a stolen key, one made with ephemeral keys is not;
# 4. keep a client inside its home folder, against `..`, absolute paths, look-alike siblings and symbolic links.
#
# **You need:** notebooks 01–03 and the course's FTP lab. **Time:** about 90 minutes, and about 8 more for the optional *Going further* at the end.

# %% [markdown] lang=ru id=cell-000 en=26beca64
# # 05 · Зашифрованный файловый сервер
#
# *FTP-подобный сервер из курса: полный обмен ключами перед каждым запросом и домашняя папка, из которой никто не выйдет (задание 5).*
#
# **После этого блокнота вы сможете**
#
# 1. пользоваться зашифрованным файловым сервисом (`ls`, `mkdir`, `put`, `get`, `cat`, `rename`, `rm`) и проверять передачу по хешу;
# 2. показать, что каждый запрос работает на своих ключах, и объяснить, почему схема «один запрос — одно соединение» делает это естественным;
# 3. продемонстрировать прямую секретность: запись, сделанную на статических ключах, вскрывает украденный ключ, а запись на эфемерных ключах — нет;
# 4. удержать клиента внутри его домашней папки — против `..`, абсолютных путей, похожих соседних папок и символических ссылок.
#
# **Что нужно:** блокноты 01–03 и лабораторная курса о FTP-сервере. **Время:** около 80 минут и ещё около 7 минут на необязательный раздел «Для желающих» в конце.

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
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from IPython.display import display

from labcrypto import ciphers, handshake, keys, wiretap
from labcrypto.allowlist import Allowlist
from labcrypto.chat import ChatClient, ChatServer
from labcrypto.errors import DecryptionFailed, FileServiceError
from labcrypto.ftp import FileClient, FileServer
from labcrypto.lab import checks_05_ftp as checks
from labcrypto.lab import plots, vocabulary, widgets

# %% [markdown] id=cell-003
# ## 1 · A file server in a folder of its own
#
# The server's files live in a fresh temporary folder: `homes/` holds one home per user (named from the allowlist), and
# `alice-laptop/` plays alice's own computer. Keys come from your keys folder, as before. Re-running the cell makes a new folder.

# %% [markdown] lang=ru id=cell-003 en=62b8bd72
# ## 1 · Файловый сервер в собственной папке
#
# Файлы сервера лежат в новой временной папке: в `homes/` — по домашней папке на пользователя (имена берутся из списка разрешённых ключей),
# а `alice-laptop/` изображает собственный компьютер alice. Ключи, как и раньше, берутся из вашей папки ключей. Повторный запуск ячейки создаёт новую папку.

# %% id=cell-004
key_dir = keys.default_dir()
server_key = keys.load_or_create("ftp-server", key_dir)
people = {name: keys.load_or_create(name, key_dir) for name in ("alice", "bob")}

lab = Path(tempfile.mkdtemp(prefix="lab05-"))
allowlist = Allowlist(lab / "allowlist.csv")
for name, pair in people.items():
    allowlist.add(name, pair.public_key)
laptop = lab / "alice-laptop"
laptop.mkdir()
lab

# %% id=cell-005
server = FileServer(server_key, allowlist, lab / "homes", name="05-files").start()
alice = FileClient(*server.address, people["alice"], server_key=server_key.public_key)
server, alice

# %% [markdown] id=cell-006
# Every method of the client is one request: connect, handshake with fresh keys, one command, one reply, close —
# the course's one-request-per-connection design.

# %% [markdown] lang=ru id=cell-006 en=084f4a48
# Каждый метод клиента — это один запрос: подключение, рукопожатие с новыми ключами, одна команда, один ответ, закрытие.
# Это схема курса «один запрос — одно соединение».

# %% id=cell-007
alice.mkdir("docs")
(laptop / "notes.txt").write_text("Lab 3 notes: DH, then HKDF, then AES-GCM.\n")
alice.put(laptop / "notes.txt", "docs/notes.txt")
widgets.table([entry.row() for entry in alice.ls("docs")])

# %% id=cell-008
alice.cat("docs/notes.txt")

# %% id=cell-009
alice.rename("docs/notes.txt", "docs/lab3-notes.txt"), alice.cd("docs"), alice.pwd()

# %% id=cell-010
alice.get("lab3-notes.txt", laptop / "copy.txt"), (laptop / "copy.txt").read_text()

# %% id=cell-011
alice.rm("lab3-notes.txt"), alice.cd("/"), [entry.name for entry in alice.ls("docs")]

# %% [markdown] id=cell-012
# On the server's disk, alice's `/` is the folder `homes/alice`. She never sees that name, nor anything next to it:

# %% [markdown] lang=ru id=cell-012 en=1975ee2d
# На диске сервера `/` для alice — это папка `homes/alice`. Этого имени она никогда не видит, как и ничего рядом с ним:

# %% id=cell-013
sorted(str(p.relative_to(lab)) for p in (lab / "homes").rglob("*"))

# %% [markdown] id=cell-014
# ### A larger file, with a progress bar and a digest
#
# The file travels in frames of 512 KiB, each sealed with the next message number, and ends with a sealed end record
# that says how many bytes were sent. A changed, replayed, reordered or missing frame fails to open, and a stream cut
# before the end record is not kept: the receiver keeps the file only when all of it arrived (otherwise there is no file
# at all, not half of one). The SHA-256 below is computed by us, on each copy, to see that for ourselves.

# %% [markdown] lang=ru id=cell-014 en=3ee93bea
# ### Файл побольше, с индикатором прогресса и хешем
#
# Файл передаётся кадрами по 512 КиБ. Каждый кадр запечатан: зашифрован и аутентифицирован с очередным номером сообщения.
# В конце идёт запечатанная запись о конце передачи, в ней сказано, сколько байтов отправлено.
# Изменённый, повторённый, переставленный или пропавший кадр не откроется, а поток, оборванный до записи о конце, не сохраняется:
# получатель сохраняет файл, только если пришёл весь файл (иначе файла нет вовсе, а не половина его).
# SHA-256 ниже мы вычисляем сами, по каждой копии, чтобы убедиться в этом своими глазами.

# %% id=cell-015
big = laptop / "dataset.bin"
big.write_bytes(os.urandom(24 * 1024 * 1024))
bar = widgets.progress(big.stat().st_size, "upload")
display(bar)
up = alice.put(big, "dataset.bin", progress=lambda done, total: setattr(bar, "value", done))
up

# %% id=cell-016
local_digest = hashlib.sha256(big.read_bytes()).hexdigest()
stored = hashlib.sha256((lab / "homes" / "alice" / "dataset.bin").read_bytes()).hexdigest()
widgets.table([{"our SHA-256": local_digest[:32] + "…", "SHA-256 of the server's copy": stored[:32] + "…",
                "match": local_digest == stored, "MB/s": round(up.mb_per_s)}])

# %% id=cell-017
bar = widgets.progress(big.stat().st_size, "download")
display(bar)
down = alice.get("dataset.bin", laptop / "dataset-again.bin", progress=lambda done, total: setattr(bar, "value", done))
down.sha256 == local_digest, hashlib.sha256((laptop / "dataset-again.bin").read_bytes()).hexdigest() == local_digest

# %% [markdown] id=my-cipher
# ### Exercise: your own seal and open
#
# Every request above was sealed and opened by the package's channel; now write that part yourself. After the exchange both sides hold the same `K` (here as bytes: `K.to_bytes(256, "big")` for a 2048-bit group).
# Write `MyCipher(K, i_am_client)`, one side of the conversation, with `seal(plaintext)` for what it sends and `open(data)` for what it receives:
#
# 1. two keys, one per direction, each made from `K` with HKDF-SHA256 (32 bytes, no salt): `info=b"client to server"` and `info=b"server to client"`.
#    The client seals with the first and opens with the second; the server the other way round. `K` itself is never a key.
# 2. a nonce that never repeats under one key: the number of messages this side has sealed before, as 12 big-endian bytes (`count.to_bytes(12, "big")`).
#    The receiver counts the messages it has opened the same way, so the nonce is not sent.
#    That holds only while `K` is new for every conversation, as here (fresh ephemeral keys for each request): with the course's static `K = A^b`
#    every connection would derive the same two keys and count from 0 again, reusing nonces. That is why the lab's own key schedule also mixes in both hellos' random nonces.
# 3. `seal` returns `AESGCM(key).encrypt(nonce, plaintext, None)`; `open` returns `AESGCM(key).decrypt(nonce, data, None)`, which raises `InvalidTag` when a single bit was changed: let it raise.
#
# The check is the other side: it derives the keys as described, opens what your client seals and seals what it must open. Then it flips one bit of a message and delivers another one twice.

# %% [markdown] lang=ru id=my-cipher en=c6e60078
# ### Упражнение: свои seal и open
#
# Каждый запрос выше шифровал и расшифровывал канал из пакета; теперь напишите эту часть сами. После обмена у обеих сторон один и тот же `K` (здесь в виде байтов: `K.to_bytes(256, "big")` для 2048-битной группы).
# Напишите `MyCipher(K, i_am_client)` — одну сторону разговора: `seal(plaintext)` для того, что она отправляет, и `open(data)` для того, что она получает.
#
# 1. Два ключа, по одному на каждое направление, оба выводятся из `K` через HKDF-SHA256 (32 байта, без соли): `info=b"client to server"` и `info=b"server to client"`.
#    Клиент шифрует первым и расшифровывает вторым, сервер — наоборот. Сам `K` ключом не бывает никогда.
# 2. Nonce, который под одним ключом никогда не повторяется: число сообщений, которые эта сторона зашифровала раньше, в виде 12 байтов big-endian (`count.to_bytes(12, "big")`).
#    Получатель так же считает сообщения, которые он расшифровал, поэтому nonce не передаётся.
#    Это верно, только пока `K` новый в каждом разговоре, как здесь (свежие эфемерные ключи на каждый запрос): со статическим `K = A^b` из курса
#    каждое соединение выводило бы те же два ключа и снова считало бы с 0, то есть повторяло бы nonce. Поэтому схема выработки ключей в самой лабораторной подмешивает ещё и случайные nonce из обоих приветствий.
# 3. `seal` возвращает `AESGCM(key).encrypt(nonce, plaintext, None)`; `open` возвращает `AESGCM(key).decrypt(nonce, data, None)`. Если изменён хотя бы один бит, `decrypt` выбрасывает `InvalidTag`: не перехватывайте это исключение.
#
# Проверка играет роль другой стороны: она выводит ключи так, как описано выше, расшифровывает то, что зашифровал ваш клиент, и шифрует то, что он должен расшифровать.
# Затем она меняет один бит в сообщении и доставляет другое сообщение дважды.

# %% solution grade_id=my_cipher
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class MyCipher:
    """One side of an encrypted conversation: seal what it sends, open what it receives."""

    def __init__(self, K, i_am_client):
        """K: the shared secret as bytes; i_am_client: True on the client, False on the server."""
        ### BEGIN SOLUTION
        keys = [
            HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(K)
            for label in (b"client to server", b"server to client")
        ]
        self.send_key, self.recv_key = keys if i_am_client else keys[::-1]
        self.sealed = 0     # messages sealed so far: the next nonce
        self.opened = 0     # messages opened so far: the nonce the peer used next
        ### END SOLUTION

    def seal(self, plaintext):
        """The bytes to send for ``plaintext``."""
        ### BEGIN SOLUTION
        nonce = self.sealed.to_bytes(12, "big")
        self.sealed += 1
        return AESGCM(self.send_key).encrypt(nonce, plaintext, None)
        ### END SOLUTION

    def open(self, data):
        """The plaintext of received ``data``; raises if it was changed on the way."""
        ### BEGIN SOLUTION
        nonce = self.opened.to_bytes(12, "big")
        plaintext = AESGCM(self.recv_key).decrypt(nonce, data, None)  # InvalidTag if changed
        self.opened += 1
        return plaintext
        ### END SOLUTION

# %% lang=ru grade_id=my_cipher en=f28fd250
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class MyCipher:
    """Одна сторона зашифрованного разговора: шифрует то, что отправляет, расшифровывает то, что получает."""

    def __init__(self, K, i_am_client):
        """K — общий секрет в виде байтов; i_am_client — True у клиента, False у сервера."""
        ### BEGIN SOLUTION
        keys = [
            HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(K)
            for label in (b"client to server", b"server to client")
        ]
        self.send_key, self.recv_key = keys if i_am_client else keys[::-1]
        self.sealed = 0     # сколько сообщений зашифровано: это следующий nonce
        self.opened = 0     # сколько сообщений расшифровано: nonce, который собеседник взял следующим
        ### END SOLUTION

    def seal(self, plaintext):
        """Байты, которые нужно отправить для ``plaintext``."""
        ### BEGIN SOLUTION
        nonce = self.sealed.to_bytes(12, "big")
        self.sealed += 1
        return AESGCM(self.send_key).encrypt(nonce, plaintext, None)
        ### END SOLUTION

    def open(self, data):
        """Открытый текст полученных ``data``; исключение, если их изменили по дороге."""
        ### BEGIN SOLUTION
        nonce = self.opened.to_bytes(12, "big")
        plaintext = AESGCM(self.recv_key).decrypt(nonce, data, None)  # InvalidTag, если изменены
        self.opened += 1
        return plaintext
        ### END SOLUTION

# %% tests grade_id=check_my_cipher points=3
"""Check MyCipher against a correct other side: keys from HKDF, one per direction, fresh nonces, tampering and replay refused."""
checks.check_my_cipher(MyCipher)
### BEGIN HIDDEN TESTS
checks.hidden_my_cipher(MyCipher)
### END HIDDEN TESTS

# %% lang=ru grade_id=check_my_cipher en=6892dc02
"""Проверка MyCipher честной второй стороной: ключи из HKDF, свой ключ для каждого направления, новые nonce, подделка и повтор отвергаются."""
checks.check_my_cipher(MyCipher)
### BEGIN HIDDEN TESTS
checks.hidden_my_cipher(MyCipher)
### END HIDDEN TESTS

# %% [markdown] id=cell-018
# ## 2 · Fresh keys for every request
#
# Each request makes a new ephemeral key pair on both sides. A wiretap in front of the server shows what each request's two hellos carry:
# alice's static public key `A`, her ephemeral public value `X = g^x` for this request, and the server's `Y = g^y`. Ten more requests:

# %% [markdown] lang=ru id=cell-018 en=e71110a6
# ## 2 · Новые ключи для каждого запроса
#
# Каждый запрос создаёт новую эфемерную пару ключей на обеих сторонах. Прослушка перед сервером показывает, что несут два приветствия каждого запроса:
# статический открытый ключ alice `A`, её эфемерное открытое значение `X = g^x` для этого запроса и `Y = g^y` сервера. Ещё десять запросов:

# %% id=cell-019
def short(value):
    """A public value from a hello, cut to its first 16 hex digits ("—" if there is none)."""
    return value[:18] + "…" if value else "—"


def hello_values(conn):
    """The public values in the two hellos of one tapped connection."""
    hellos = {f.message["type"]: f.message for f in conn.frames if f.kind == "handshake"}
    client, server = hellos["client_hello"], hellos["server_hello"]
    return {"A (alice, static)": short(client["static"]),
            "X (alice, this request)": short(client.get("ephemeral")),
            "Y (server, this request)": short(server.get("ephemeral"))}


keys_tap = wiretap.Wiretap(server.address, name="05-tap-keys").start()
tapped_alice = FileClient(*keys_tap.address, people["alice"], server_key=server_key.public_key)
for _ in range(10):
    tapped_alice.ls("/")
requests = [hello_values(conn) for conn in keys_tap.connections]
widgets.table([{"request": i + 1, **row} for i, row in enumerate(requests)])

# %% lang=ru id=cell-019 en=339c7044
def short(value):
    """Открытое значение из приветствия, обрезанное до первых 16 шестнадцатеричных цифр ("—", если его нет)."""
    return value[:18] + "…" if value else "—"


def hello_values(conn):
    """Открытые значения в двух приветствиях одного прослушанного соединения."""
    hellos = {f.message["type"]: f.message for f in conn.frames if f.kind == "handshake"}
    client, server = hellos["client_hello"], hellos["server_hello"]
    return {"A (alice, static)": short(client["static"]),
            "X (alice, this request)": short(client.get("ephemeral")),
            "Y (server, this request)": short(server.get("ephemeral"))}


keys_tap = wiretap.Wiretap(server.address, name="05-tap-keys").start()
tapped_alice = FileClient(*keys_tap.address, people["alice"], server_key=server_key.public_key)
for _ in range(10):
    tapped_alice.ls("/")
requests = [hello_values(conn) for conn in keys_tap.connections]
widgets.table([{"request": i + 1, **row} for i, row in enumerate(requests)])

# %% [markdown] id=cell-020
# How many different values each column holds over the ten requests:

# %% [markdown] lang=ru id=cell-020 en=6614f90b
# Сколько разных значений в каждом столбце за десять запросов:

# %% id=cell-020b
widgets.table([{column: len({row[column] for row in requests}) for column in requests[0]}])

# %% id=cell-021
server_ys = [f.message["ephemeral"] for f in keys_tap.frames() if f.kind == "handshake" and f.message["type"] == "server_hello"]
plots.fingerprint_grid([y[2:34] for y in server_ys], static=people["alice"].fingerprint,
                       title="Y = g^y of each request", xlabel="byte of Y (its first 16)");

# %% [markdown] id=static-mode
# `A` is the same every time: it says **who** alice is, and the server checks it against the allowlist on every request. `X` and `Y` are new every time,
# and so is `K' = g^xy`, which only the two ends of that one request ever computed.
#
# **And in `static` mode?** The course's own exchange has no `X` and no `Y`. Its session keys still differ from one connection to the next, because
# of the public random nonces in the hellos, so a table of session fingerprints looks just as varied. But the only Diffie-Hellman secret behind them is
# `K = A^b`, the same for every connection. Three connections to a chat room in `static` mode, with a hash of that `K` (the server can compute it; a hash is safe to show):

# %% [markdown] lang=ru id=static-mode en=a7ce45f9
# `A` каждый раз один и тот же: он говорит, **кто** такая alice, и сервер сверяет его со списком разрешённых ключей при каждом запросе. `X` и `Y` каждый раз новые,
# а с ними и `K' = g^xy`, который вычисляли только два конца этого одного запроса.
#
# **А в режиме `static`?** В обмене из курса нет ни `X`, ни `Y`. Его ключи сеанса всё равно меняются от соединения к соединению —
# из-за открытых случайных nonce в приветствиях, поэтому таблица отпечатков сеансов выглядит так же пёстро. Но единственный секрет Диффи — Хеллмана за ними —
# `K = A^b`, один и тот же для всех соединений. Три соединения с комнатой чата в режиме `static` и хеш этого `K` (сервер может его вычислить; показывать хеш безопасно):

# %% id=static-rows
static_room = ChatServer(server_key, allowlist, name="05-static-keys", mode="static").start()
static_tap = wiretap.Wiretap(static_room.address, name="05-tap-static").start()
rows = []
for _ in range(3):
    static_chat = ChatClient.connect(*static_tap.address, people["alice"], mode="static", server_key=server_key.public_key)
    fingerprint = static_chat.channel.session.fingerprint
    static_chat.close()
    conn = static_tap.connections[-1]
    hello = json.loads(next(f.payload for f in conn.frames if f.kind == "handshake"))
    K = server_key.shared_secret(keys.parse_number(hello["static"]))        # K = A^b, as the server computes it
    rows.append({**hello_values(conn), "nonce (public)": hello["nonce"][:16] + "…",
                 "session keys": fingerprint, "SHA-256 of K": hashlib.sha256(str(K).encode()).hexdigest()[:16]})
static_tap.stop(), static_room.stop()
widgets.table(rows)

# %% lang=ru id=static-rows en=5b9d7953
static_room = ChatServer(server_key, allowlist, name="05-static-keys", mode="static").start()
static_tap = wiretap.Wiretap(static_room.address, name="05-tap-static").start()
rows = []
for _ in range(3):
    static_chat = ChatClient.connect(*static_tap.address, people["alice"], mode="static", server_key=server_key.public_key)
    fingerprint = static_chat.channel.session.fingerprint
    static_chat.close()
    conn = static_tap.connections[-1]
    hello = json.loads(next(f.payload for f in conn.frames if f.kind == "handshake"))
    K = server_key.shared_secret(keys.parse_number(hello["static"]))        # K = A^b, как его вычисляет сервер
    rows.append({**hello_values(conn), "nonce (public)": hello["nonce"][:16] + "…",
                 "session keys": fingerprint, "SHA-256 of K": hashlib.sha256(str(K).encode()).hexdigest()[:16]})
static_tap.stop(), static_room.stop()
widgets.table(rows)

# %% [markdown] id=cell-022
# The session keys differ on every row here too, yet whoever steals `b` computes `K = A^b` once and opens all three. Fresh session keys are not enough:
# what protects a recording is a fresh *secret*, `K'`, that nobody kept. Section 3 shows both, with a thief.
#
# ## 3 · Forward secrecy, demonstrated
#
# Eve records everything, and waits. A year later a thief copies the server's keys folder. What can they read?
#
# **A static-key session.** A chat room in `static` mode — the course's own exchange — uses only the long-term keys (`K = A^b`, plus public nonces).
# Eve records alice's chat with it:

# %% [markdown] lang=ru id=cell-022 en=23961e76
# Ключи сеанса и здесь разные в каждой строке, но тот, кто украдёт `b`, один раз вычислит `K = A^b` и вскроет все три. Новых ключей сеанса недостаточно:
# запись защищает новый *секрет* `K'`, который никто не сохранил. Раздел 3 показывает и то, и другое — с вором.
#
# ## 3 · Прямая секретность на деле
#
# Ева записывает всё и ждёт. Через год вор копирует папку ключей сервера. Что он сможет прочитать?
#
# **Сеанс на статических ключах.** Комната чата в режиме `static` — это и есть обмен из курса — использует только долговременные ключи (`K = A^b` плюс открытые nonce).
# Ева записывает разговор alice в этой комнате:

# %% id=cell-023
room = ChatServer(server_key, allowlist, name="05-static-room", mode="static").start()
room_tap = wiretap.Wiretap(room.address, name="05-tap-chat").start()
chat = ChatClient.connect(*room_tap.address, people["alice"], mode="static", server_key=server_key.public_key)
chat.send("the answers to the exam are in docs/answers.txt")
replies = [m.text for m in chat.iter_messages(timeout=0.3)]
chat.close()
recorded_chat = room_tap.frames()
replies

# %% [markdown] id=cell-024
# **The theft.** The server's private key file, read from disk like any file:

# %% [markdown] lang=ru id=cell-024 en=a7668ca6
# **Кража.** Файл закрытого ключа сервера, прочитанный с диска, как любой другой файл:

# %% id=cell-025
stolen = keys.load("ftp-server", key_dir)
stolen

# %% [markdown] id=cell-026
# **Offline decryption.** The thief repeats the server's key schedule with the stolen key and the recorded hellos: `K = A^b mod p`,
# then `handshake.key_schedule` (HKDF over `K`, both nonces and the hash of both hellos), then AES-GCM with the message counter as nonce.

# %% [markdown] lang=ru id=cell-026 en=062a9be9
# **Расшифровка без сети.** Вор повторяет выработку ключей сервера с украденным ключом и записанными приветствиями: `K = A^b mod p`,
# затем `handshake.key_schedule` (HKDF от `K`, обоих nonce и хеша обоих приветствий), затем AES-GCM со счётчиком сообщений в роли nonce.

# %% id=cell-027
def decrypt_recording(frames, stolen_key):
    """Everything said in one recorded connection, opened with the server's stolen private key."""
    hellos = {f.message["type"]: f.payload for f in frames if f.kind == "handshake"}
    A = keys.parse_number(json.loads(hellos["client_hello"])["static"])
    K = stolen_key.shared_secret(A)                                         # K = A^b mod p
    session, _ = handshake.key_schedule("static", {"ss": K}, hellos["client_hello"], hellos["server_hello"])
    readers = {wiretap.C2S: ciphers.AeadCipher(session.client_to_server),
               wiretap.S2C: ciphers.AeadCipher(session.server_to_client)}
    return [(f.direction, readers[f.direction].open(f.payload)) for f in frames if f.kind == "data"]

# %% lang=ru id=cell-027 en=07e159f0
def decrypt_recording(frames, stolen_key):
    """Всё сказанное в одном записанном соединении, вскрытое украденным закрытым ключом сервера."""
    hellos = {f.message["type"]: f.payload for f in frames if f.kind == "handshake"}
    A = keys.parse_number(json.loads(hellos["client_hello"])["static"])
    K = stolen_key.shared_secret(A)                                         # K = A^b mod p
    session, _ = handshake.key_schedule("static", {"ss": K}, hellos["client_hello"], hellos["server_hello"])
    readers = {wiretap.C2S: ciphers.AeadCipher(session.client_to_server),
               wiretap.S2C: ciphers.AeadCipher(session.server_to_client)}
    return [(f.direction, readers[f.direction].open(f.payload)) for f in frames if f.kind == "data"]

# %% id=cell-028
[text for direction, text in decrypt_recording(recorded_chat, stolen) if text][:4]

# %% [markdown] id=cell-029
# Every word, a year later. The recording was safe only as long as the long-term key was.
#
# **The per-request sessions.** Now Eve records alice's file requests (each one a connection of its own):

# %% [markdown] lang=ru id=cell-029 en=1c9946e0
# Каждое слово — через год. Запись была в безопасности ровно до тех пор, пока был в безопасности долговременный ключ.
#
# **Сеансы на каждый запрос.** Теперь Ева записывает файловые запросы alice (каждый — в отдельном соединении):

# %% id=cell-030
ftp_tap = wiretap.Wiretap(server.address, name="05-tap-files").start()
recorded_alice = FileClient(*ftp_tap.address, people["alice"], server_key=server_key.public_key)
recorded_alice.put(laptop / "copy.txt", "docs/answers.txt")
recorded_alice.cat("docs/answers.txt")

# %% id=cell-031
def try_to_open(frames):
    try:
        said = decrypt_recording(frames, stolen)
    except DecryptionFailed as exc:
        return vocabulary.sentence("cannot open it: {error}", error=exc)
    return vocabulary.sentence("opened: {text}", text=repr(said[0][1][:60]))

widgets.table([{"connection": conn.id, "ephemeral keys in the hellos": "ephemeral" in (conn.frames[0].message or {}),
                "the thief, with the stolen server key": try_to_open(conn.frames)}
               for conn in ftp_tap.connections], max_width=110)

# %% [markdown] id=cell-032
# The same stolen key, the same code: nothing opens. Every `secure` handshake — the file service's and the chat's —
# mixes in secrets from **ephemeral** key pairs made for that one connection: `X = g^x` from alice, `Y = g^y` from the server.
# `X` and `Y` are in the recording, but `x` and `y` were never written anywhere and were forgotten when the request ended:
# getting them back is the discrete logarithm of notebook 01. That is **forward secrecy**. Even *both* long-term keys
# would not open it: the term `ee = Y^x = X^y` needs `x` or `y`.
#
# From the recording the thief still learns *who* talked (alice's static key is in the hello), when, and how much (frame sizes).
# (What else a stolen key gives him — logging in *as* a student — is the optional *Going further* at the end.)

# %% [markdown] lang=ru id=cell-032 en=c8fa1cf3
# Тот же украденный ключ, тот же код — ничего не открывается. Каждое рукопожатие в режиме `secure` — и файлового сервиса, и чата —
# подмешивает секреты из **эфемерных** пар ключей, созданных для одного этого соединения: `X = g^x` от alice, `Y = g^y` от сервера.
# `X` и `Y` есть в записи, но `x` и `y` нигде не записывались и были забыты, когда запрос закончился:
# вернуть их — это дискретный логарифм из блокнота 01. Это и есть **прямая секретность**. Даже *оба* долговременных ключа
# её не вскроют: для `ee = Y^x = X^y` нужен `x` или `y`.
#
# Из записи вор всё равно узнаёт, *кто* разговаривал (статический ключ alice есть в приветствии), когда и сколько (размеры кадров).
# (Что ещё даёт ему украденный ключ — вход *под именем* студента, — показано в необязательном разделе «Для желающих» в конце.)

# %% [markdown] id=request-handler
# ### Exercise: a fresh key pair for every request
#
# Task 5 of the course: "key exchange and generation happen on every request, and are different every time". Write the server's side of one request,
# `handle_request(sock, server_key, answer)`. Its protocol is smaller than labcrypto's, so it fits in one function:
#
# ```
# client → server   {"static": hex(A), "ephemeral": hex(X)}    its hello: one frame of JSON
# server → client   {"ephemeral": hex(Y)}                      your hello: the Y of a key pair made for this request
# client → server   the command, sealed with request_keys[:32]
# server → client   answer(command), sealed with request_keys[32:]
# ```
#
# 1. Read the client's hello with `read_frame(sock)` and keep its bytes exactly as they came; take `A` and `X` from it (`int(text, 16)`).
# 2. Make a **fresh** key pair for this request, `mine = keys.generate(server_key.group)`, and send your hello with its public value `Y` (`write_frame`).
# 3. `K = A^b` is `server_key.shared_secret(A)`, and `K' = X^y` is `mine.shared_secret(X)` (both check the client's value first).
# 4. The keys: 64 bytes of HKDF-SHA256, no salt, `info = b"labcrypto 05 request" + transcript_hash(client_hello, server_hello)` (both hellos exactly as sent),
#    from `K'.to_bytes(256, "big") + K.to_bytes(256, "big")`: call them `request_keys` (`keys` is the module). The first 32 bytes are the client-to-server key, the last 32 the server-to-client key.
# 5. Open the command with `AESGCM(request_keys[:32]).decrypt(bytes(12), data, None)` and send `AESGCM(request_keys[32:]).encrypt(bytes(12), answer(command), None)`.
#    A nonce of zeros is safe here only because each key seals exactly one message, and the keys are new for every request.
#
# The check is the client, over TCP: two requests (each must get a Y and keys of its own), then the first one replayed byte for byte.
# Then comes the thief of section 3, with the recording of a request and **both** static private keys: he tries every way to derive its keys from what he can compute.

# %% [markdown] lang=ru id=request-handler en=6674bed7
# ### Упражнение: новая пара ключей для каждого запроса
#
# Задание 5 курса: «обмен ключами и генерация происходят при каждом запросе и каждый раз разные». Напишите сторону сервера для одного запроса,
# `handle_request(sock, server_key, answer)`. Её протокол меньше, чем у labcrypto, поэтому он помещается в одну функцию:
#
# ```
# клиент → сервер   {"static": hex(A), "ephemeral": hex(X)}    его приветствие: один кадр JSON
# сервер → клиент   {"ephemeral": hex(Y)}                      ваше приветствие: Y пары ключей, созданной для этого запроса
# клиент → сервер   команда, запечатанная ключом request_keys[:32]
# сервер → клиент   answer(command), запечатанный ключом request_keys[32:]
# ```
#
# 1. Прочитайте приветствие клиента через `read_frame(sock)` и сохраните его байты ровно такими, какими они пришли; возьмите из него `A` и `X` (`int(text, 16)`).
# 2. Создайте **новую** пару ключей для этого запроса, `mine = keys.generate(server_key.group)`, и отправьте своё приветствие с её открытым значением `Y` (`write_frame`).
# 3. `K = A^b` — это `server_key.shared_secret(A)`, а `K' = X^y` — это `mine.shared_secret(X)` (оба сначала проверяют значение клиента).
# 4. Ключи: 64 байта HKDF-SHA256, без соли, `info = b"labcrypto 05 request" + transcript_hash(client_hello, server_hello)` (оба приветствия ровно в том виде, в каком отправлены),
#    из `K'.to_bytes(256, "big") + K.to_bytes(256, "big")`: назовите их `request_keys` (`keys` — это модуль). Первые 32 байта — ключ от клиента к серверу, последние 32 — ключ от сервера к клиенту.
# 5. Откройте команду через `AESGCM(request_keys[:32]).decrypt(bytes(12), data, None)` и отправьте `AESGCM(request_keys[32:]).encrypt(bytes(12), answer(command), None)`.
#    Нулевой nonce здесь безопасен только потому, что каждый ключ запечатывает ровно одно сообщение, а ключи новые для каждого запроса.
#
# Проверка играет роль клиента, по TCP: два запроса (у каждого должны быть свои Y и свои ключи), затем первый запрос, повторённый байт в байт.
# Затем приходит вор из раздела 3 — с записью запроса и **обоими** украденными статическими закрытыми ключами: он пробует все способы вывести её ключи из того, что может вычислить.

# %% solution grade_id=request_handler
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from labcrypto.channel import read_frame, write_frame
from labcrypto.handshake import transcript_hash


def handle_request(sock, server_key, answer):
    """One request of the encrypted file server: a fresh key pair, K and K', the sealed answer."""
    ### BEGIN SOLUTION
    client_hello = read_frame(sock)
    hello = json.loads(client_hello)
    A, X = int(hello["static"], 16), int(hello["ephemeral"], 16)
    mine = keys.generate(server_key.group)          # y and Y = g^y: for this request only
    server_hello = json.dumps({"ephemeral": hex(mine.public)}).encode()
    write_frame(sock, server_hello)
    K = server_key.shared_secret(A)                 # K = A^b: the static keys say who talks
    K2 = mine.shared_secret(X)                      # K' = X^y: gone when the request ends
    info = b"labcrypto 05 request" + transcript_hash(client_hello, server_hello)
    request_keys = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=info).derive(
        K2.to_bytes(256, "big") + K.to_bytes(256, "big"))
    command = AESGCM(request_keys[:32]).decrypt(bytes(12), read_frame(sock), None)
    write_frame(sock, AESGCM(request_keys[32:]).encrypt(bytes(12), answer(command), None))
    ### END SOLUTION

# %% lang=ru grade_id=request_handler en=60c1da2c
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from labcrypto.channel import read_frame, write_frame
from labcrypto.handshake import transcript_hash


def handle_request(sock, server_key, answer):
    """Один запрос зашифрованного файлового сервера: новая пара ключей, K и K', запечатанный ответ."""
    ### BEGIN SOLUTION
    client_hello = read_frame(sock)
    hello = json.loads(client_hello)
    A, X = int(hello["static"], 16), int(hello["ephemeral"], 16)
    mine = keys.generate(server_key.group)          # y и Y = g^y: только для этого запроса
    server_hello = json.dumps({"ephemeral": hex(mine.public)}).encode()
    write_frame(sock, server_hello)
    K = server_key.shared_secret(A)                 # K = A^b: статические ключи говорят, кто говорит
    K2 = mine.shared_secret(X)                      # K' = X^y: исчезает, когда запрос закончен
    info = b"labcrypto 05 request" + transcript_hash(client_hello, server_hello)
    request_keys = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=info).derive(
        K2.to_bytes(256, "big") + K.to_bytes(256, "big"))
    command = AESGCM(request_keys[:32]).decrypt(bytes(12), read_frame(sock), None)
    write_frame(sock, AESGCM(request_keys[32:]).encrypt(bytes(12), answer(command), None))
    ### END SOLUTION

# %% tests grade_id=check_request_handler points=3
"""Check handle_request as its client over TCP: a key pair and keys of its own for every request, a replay refused, a thief with both static keys locked out."""
checks.check_request_handler(handle_request)
### BEGIN HIDDEN TESTS
checks.hidden_request_handler(handle_request)
### END HIDDEN TESTS

# %% lang=ru grade_id=check_request_handler en=bd00938a
"""Проверка handle_request её клиентом по TCP: у каждого запроса своя пара ключей и свои ключи, повтор отвергнут, вор с обоими статическими ключами не входит."""
checks.check_request_handler(handle_request)
### BEGIN HIDDEN TESTS
checks.hidden_request_handler(handle_request)
### END HIDDEN TESTS

# %% [markdown] id=one-request
# **Why one request per connection makes this natural.** Every request already opens a new connection and runs a whole handshake before its one
# command, so a new ephemeral key pair there costs only a little more arithmetic and needs no state: nothing is kept between requests, and `y` is
# thrown away when the handler returns. A long-lived connection would have to re-key in the middle of a conversation to get the same effect;
# here each request simply is its own session, so a stolen long-term key opens none of the recorded ones.

# %% [markdown] lang=ru id=one-request en=7536e553
# **Почему схема «один запрос — одно соединение» делает это естественным.** Каждый запрос и так открывает новое соединение и проходит полное рукопожатие
# перед своей единственной командой, поэтому новая эфемерная пара ключей стоит там лишь немного дополнительной арифметики и не требует состояния: между
# запросами ничего не хранится, а `y` выбрасывается, когда обработчик возвращается. Долгоживущему соединению для того же эффекта пришлось бы менять ключи
# посреди разговора; здесь же каждый запрос — сам по себе отдельный сеанс, поэтому украденный долговременный ключ не вскроет ни одной записи.

# %% [markdown] id=jail
# ## 4 · The jail: a home you cannot leave
#
# Bob stores a file in his home. Alice tries every way out of hers:

# %% [markdown] lang=ru id=jail en=85b3f26d
# ## 4 · Изоляция: домашняя папка, из которой не выйти
#
# Студент bob сохраняет файл в своей домашней папке, а alice пробует все пути наружу из своей:

# %% id=cell-033
bob = FileClient(*server.address, people["bob"], server_key=server_key.public_key)
(laptop / "bob.txt").write_text("bob's private notes")
bob.put(laptop / "bob.txt", "private.txt")
os.symlink("/etc", lab / "homes" / "alice" / "system")      # a link someone left in alice's home
bob.ls("/")

# %% lang=ru id=cell-033 en=7d5bb687
bob = FileClient(*server.address, people["bob"], server_key=server_key.public_key)
(laptop / "bob.txt").write_text("bob's private notes")
bob.put(laptop / "bob.txt", "private.txt")
os.symlink("/etc", lab / "homes" / "alice" / "system")      # ссылка, которую кто-то оставил в домашней папке alice
bob.ls("/")

# %% id=cell-034
def attempt(how, path):
    try:
        result = vocabulary.sentence("allowed: {text}", text=repr(alice.cat(path)[:40]))
    except FileServiceError as exc:
        result = f"{type(exc).__name__}: {exc}"
    return {"the trick": how, "alice asks for": path, "result": result}

widgets.table([attempt(how, path) for how, path in [
    ("climb out with ..", "../bob/private.txt"),
    ("climb from the top", "/../../etc/passwd"),
    ("down, then up twice", "docs/../../bob/private.txt"),
    ("an absolute path", "/etc/passwd"),
    ("through a symbolic link", "system/passwd"),
    ("Windows separators", "..\\bob\\private.txt"),
    ("a look-alike slash (U+2215)", "..\u2215bob\u2215private.txt"),
]], max_width=130)

# %% [markdown] id=cell-035
# `..` above the top of the home is refused before the disk is touched; `/etc/passwd` is *alice's* `/etc/passwd` (inside her home, and it does not exist —
# "ideally the user should not even suspect anything is outside"); the link is never followed; backslashes and look-alike slashes (`∕`, U+2215) are refused as names.
# The server does this without `os.chdir` (which would move every thread of the process at once, course mistake 13): it walks the path one name at a time
# from its open home folder (`labcrypto/jail.py`).
#
# ## 5 · Exercise: the path check
#
# Write `safe_path(home, requested)`. `requested` is a path as the client sends it, where `/` is the top of the home.
# Return the real path on the server's disk, or raise `PermissionError` if it leads outside `home`.
#
# * Strip the leading `/` and join the rest under `home`; then resolve `..` and symbolic links (`Path.resolve()`).
# * Check the result is `home` or inside it by **path components**: `target.is_relative_to(home)`.
#   A string test (`str(target).startswith(str(home))`) lets the sibling folder `alice2` pass as inside `alice` (course mistake 13).
#
# The check tries a battery of escapes in a temporary folder that has a sibling `alice2` and links that lead out.

# %% [markdown] lang=ru id=cell-035 en=e3ca4dbe
# `..` выше вершины домашней папки отвергается ещё до обращения к диску. `/etc/passwd` — это `/etc/passwd` *самой alice* (внутри её домашней папки, и такого файла нет:
# курс хочет, чтобы «в идеале пользователь даже не подозревал», что снаружи что-то есть). По ссылке сервер никогда не переходит; обратная косая черта и похожие на косую черту символы (`∕`, U+2215) в именах отвергаются.
# Всё это сервер делает без `os.chdir` (он сменил бы папку сразу всем потокам процесса — типичная ошибка № 13): он проходит путь по одному имени за раз,
# начиная со своей открытой домашней папки (`labcrypto/jail.py`).
#
# ## 5 · Упражнение: проверка пути
#
# Напишите `safe_path(home, requested)`. `requested` — путь в том виде, в каком его присылает клиент, где `/` — вершина домашней папки.
# Верните настоящий путь на диске сервера или выбросьте `PermissionError`, если путь ведёт за пределы `home`.
#
# * Уберите ведущий `/` и присоедините остальное к `home`; затем разрешите `..` и символические ссылки (`Path.resolve()`).
# * Проверьте, что результат — это `home` или путь внутри неё, **по компонентам пути**: `target.is_relative_to(home)`.
#   Строковая проверка (`str(target).startswith(str(home))`) пропускает соседнюю папку `alice2` как будто она внутри `alice` (типичная ошибка № 13).
#
# Проверка пробует целый набор побегов во временной папке, где есть соседняя `alice2` и ссылки, ведущие наружу.

# %% solution grade_id=safe_path
def safe_path(home, requested):
    """The real path of the client's `requested` path inside `home`; PermissionError if it leads out."""
    ### BEGIN SOLUTION
    home = Path(home).resolve()
    target = (home / requested.lstrip("/")).resolve()
    if not target.is_relative_to(home):
        raise PermissionError(f"{requested!r} leads outside your home folder")
    return target
    ### END SOLUTION

# %% lang=ru grade_id=safe_path en=f5c20161
def safe_path(home, requested):
    """Настоящий путь для пути клиента `requested` внутри `home`; PermissionError, если он ведёт наружу."""
    ### BEGIN SOLUTION
    home = Path(home).resolve()
    target = (home / requested.lstrip("/")).resolve()
    if not target.is_relative_to(home):
        raise PermissionError(f"{requested!r} leads outside your home folder")
    return target
    ### END SOLUTION

# %% tests grade_id=check_safe_path points=2
"""Check safe_path: inside paths mapped under the home; '..', the sibling alice2 and links refused."""
checks.check_safe_path(safe_path)
### BEGIN HIDDEN TESTS
checks.hidden_safe_path(safe_path, lab / "homes" / "alice")
### END HIDDEN TESTS

# %% lang=ru grade_id=check_safe_path en=a186e7e0
"""Проверка safe_path: пути внутри ведут в домашнюю папку; '..', соседняя alice2 и ссылки отвергаются."""
checks.check_safe_path(safe_path)
### BEGIN HIDDEN TESTS
checks.hidden_safe_path(safe_path, lab / "homes" / "alice")
### END HIDDEN TESTS

# %% [markdown] id=cell-038
# ## 6 · Exercise: `du` on the API
#
# The server has no `du` command, but the client can build one from `ls`. Write `du(client, path)`: the total size in bytes of all files
# under `path`, in every folder below it.
#
# * `client.ls(path)` returns entries with `.name`, `.kind` (`"file"`, `"dir"`, `"link"` or `"other"`) and `.size`.
# * Add the sizes of the files; for each folder, recurse with the path `path.rstrip("/") + "/" + entry.name`; skip everything else (the server refuses to follow links).
# * Do not `cd`: the client's working folder must be the same afterwards.
#
# The check runs your `du` against a real file server with a known tree.

# %% [markdown] lang=ru id=cell-038 en=9a157bdc
# ## 6 · Упражнение: `du` поверх API
#
# У сервера нет команды `du`, но клиент может собрать её из `ls`. Напишите `du(client, path)`: общий размер в байтах всех файлов
# под `path`, во всех вложенных папках.
#
# * `client.ls(path)` возвращает записи с полями `.name`, `.kind` (`"file"`, `"dir"`, `"link"` или `"other"`) и `.size`.
# * Складывайте размеры файлов; для каждой папки вызывайте функцию рекурсивно с путём `path.rstrip("/") + "/" + entry.name`; всё остальное пропускайте (по ссылкам сервер не ходит).
# * Не делайте `cd`: рабочая папка клиента после вызова должна остаться прежней.
#
# Проверка запускает ваш `du` против настоящего файлового сервера с известным деревом.

# %% solution grade_id=du
def du(client, path="/"):
    """Total bytes of the files under `path` on the server, all folders included."""
    ### BEGIN SOLUTION
    total = 0
    for entry in client.ls(path):
        if entry.kind == "file":
            total += entry.size
        elif entry.kind == "dir":
            total += du(client, path.rstrip("/") + "/" + entry.name)
    return total
    ### END SOLUTION

# %% lang=ru grade_id=du en=56ff8a3d
def du(client, path="/"):
    """Сколько байтов занимают файлы под `path` на сервере, со всеми вложенными папками."""
    ### BEGIN SOLUTION
    total = 0
    for entry in client.ls(path):
        if entry.kind == "file":
            total += entry.size
        elif entry.kind == "dir":
            total += du(client, path.rstrip("/") + "/" + entry.name)
    return total
    ### END SOLUTION

# %% tests grade_id=check_du points=2
"""Check du: every file under the folder, recursing through ls, links skipped, no cd."""
checks.check_du(du)
### BEGIN HIDDEN TESTS
checks.hidden_du(du, alice, lab / "homes" / "alice")
### END HIDDEN TESTS

# %% lang=ru grade_id=check_du en=f25513ff
"""Проверка du: все файлы под папкой, рекурсия через ls, ссылки пропускаются, без cd."""
checks.check_du(du)
### BEGIN HIDDEN TESTS
checks.hidden_du(du, alice, lab / "homes" / "alice")
### END HIDDEN TESTS

# %% [markdown] id=cell-045
# ## Summary
#
# * The file service keeps the course's design — one request per connection — and puts a full handshake in front of each: the allowlist is checked every time, and each request gets session keys of its own.
# * Transfers stream in large sealed frames and end with a sealed end record; the receiver keeps the file only when all of it arrived.
# * With static keys only, a stolen private key opens every recording. `secure` mode mixes in ephemeral keys made for one connection and then forgotten: a stolen key opens no recording — forward secrecy.
# * A home folder is a jail only if every path is read as names, `..` cannot climb above the top, links are never followed, and the check compares path components, not strings.
#
# **Control question: how does SSL work in practice?** In TLS 1.3 every full handshake is an ephemeral Diffie-Hellman key exchange (ECDHE or
# finite-field DHE, like ours): the certificate's long-term key only *signs* the handshake, so stealing it later opens no recorded session.
# The exception is resuming with a pre-shared key in the PSK-only mode (`psk_ke`): it skips the fresh DH, so whoever later steals that key reads
# those connections; the mode that adds a fresh DH (`psk_dhe_ke`) keeps forward secrecy.
# TLS 1.2 still allowed "static RSA" key exchange, where the stolen server key decrypted everything — the first experiment of section 3.
#
# **Clean up.** Stop every server and tap of this notebook and delete its temporary folder:

# %% [markdown] lang=ru id=cell-045 en=1dd7a267
# ## Итоги
#
# * Файловый сервис сохраняет схему курса — один запрос на соединение — и ставит перед каждым запросом полное рукопожатие: список разрешённых ключей проверяется каждый раз, и у каждого запроса свои ключи сеанса.
# * Файлы передаются потоком крупных запечатанных кадров и завершаются запечатанной записью о конце передачи; получатель сохраняет файл, только если файл пришёл целиком.
# * Если есть только статические ключи, украденный закрытый ключ вскрывает любую запись. Режим `secure` подмешивает эфемерные ключи, созданные для одного соединения и затем забытые: украденный ключ не вскрывает ни одной записи — это прямая секретность.
# * Домашняя папка изолирует пользователя, только если каждый путь читается по именам, `..` не поднимается выше вершины, по ссылкам никто не ходит, а проверка сравнивает компоненты пути, а не строки.
#
# **Контрольный вопрос: как работает SSL на практике?** В TLS 1.3 каждое полное рукопожатие — это эфемерный обмен ключами Диффи — Хеллмана (ECDHE или
# DHE в конечном поле, как у нас): долговременный ключ сертификата только *подписывает* рукопожатие, поэтому его кража потом не вскроет ни одного записанного сеанса.
# Исключение — возобновление с заранее согласованным ключом (PSK) в режиме «только PSK» (`psk_ke`): в нём нет свежего обмена DH, и тот, кто потом украдёт этот ключ,
# прочтёт такие соединения; режим, который добавляет свежий DH (`psk_dhe_ke`), прямую секретность сохраняет.
# TLS 1.2 ещё допускал обмен ключами «static RSA», при котором украденный ключ сервера расшифровывал всё, — это первый эксперимент раздела 3.
#
# **Уборка.** Остановите все серверы и прослушки этого блокнота и удалите его временную папку:

# %% id=cell-046
from labcrypto.server import running_servers, stop_all

stop_all()
shutil.rmtree(lab, ignore_errors=True)
running_servers(), lab.exists()

# %% [markdown] id=cell-047
# **That was the last notebook.** Back to the start: [01 · Keys](01_keys.ipynb). To run the lab from a terminal: `labcrypto --help`
# (`labcrypto ftp-serve`, `labcrypto ftp --key alice -c "ls"`).

# %% [markdown] lang=ru id=cell-047 en=2992ba04
# **Это был последний блокнот.** Вернуться к началу: [01 · Ключи](01_keys.ipynb). Чтобы работать с лабораторной из терминала: `labcrypto --help`
# (`labcrypto ftp-serve`, `labcrypto ftp --key alice -c "ls"`).

# %% [markdown] id=further
# ## Going further (optional): the stolen key at the door
#
# Nothing above depends on this section, and nothing in it is graded. Reading old traffic is one thing a stolen key might give. The other is the future: can the thief, with the **server's**
# private key `b`, log in to the server *as alice*? He knows alice's public key `A` (it is on the allowlist, and in every hello).
# In `static` mode the session key is `K = A^b` — and he has `b`. Two rooms with alice on their allowlist, one in each mode:

# %% [markdown] lang=ru id=further en=17d22f77
# ## Для желающих: украденный ключ у двери
#
# От этого раздела ничего выше не зависит, и в нём ничего не оценивается. Чтение старого трафика — лишь одно, что может дать украденный ключ. Другое — будущее: может ли вор с закрытым ключом **сервера** `b`
# войти на сервер *как alice*? Открытый ключ alice `A` он знает (он в списке разрешённых и в каждом приветствии).
# В режиме `static` ключ сеанса — `K = A^b`, а `b` у него есть. Две комнаты, в списке разрешённых которых есть alice, по одной в каждом режиме:

# %% id=further-rooms
import secrets
import socket

from labcrypto import channel

door = Path(tempfile.mkdtemp(prefix="lab05-door-"))
door_list = Allowlist(door / "allowlist.csv")
door_list.add("alice", people["alice"].public_key)
static_door = ChatServer(server_key, door_list, name="05-static-door", mode="static").start()
secure_door = ChatServer(server_key, door_list, name="05-secure-door").start()
static_door, secure_door

# %% [markdown] id=further-thief
# His client sends alice's public key, computes every Diffie-Hellman term it can from `b` and his own ephemeral key,
# and runs the handshake's own key schedule:

# %% [markdown] lang=ru id=further-thief en=2a5717df
# Его клиент отправляет открытый ключ alice, вычисляет все слагаемые Диффи — Хеллмана, какие может, из `b` и своего эфемерного ключа,
# и запускает выработку ключей самого рукопожатия:

# %% id=cell-032b
def log_in_as_alice(address, mode):
    """The thief's client: alice's public key in the hello, the server's stolen key b in his hands."""
    A, p = people["alice"].public_key, stolen.group.p
    mine = keys.generate(stolen.group)                       # his own ephemeral key: x and X = g^x
    hello = {"type": "client_hello", "protocol": handshake.PROTOCOL, "version": handshake.PROTOCOL_VERSION,
             "service": "chat", "mode": mode, "group": stolen.group.name, "static": f"{A.value:#x}"}
    if mode == "secure":
        hello["ephemeral"] = f"{mine.public:#x}"
    hello["nonce"] = secrets.token_hex(32)
    hello = handshake.encode_message(hello)
    with socket.create_connection(address, timeout=5) as sock:
        channel.write_frame(sock, hello)
        server_hello = channel.read_frame(sock)
        channel.read_frame(sock)                             # server_finished: he does not need to check it
        reply = json.loads(server_hello)
        terms = {"ss": pow(A.value, stolen.private, p)}      # ss = A^b: the stolen b does it all in static mode
        if mode == "secure":
            B, Y = int(reply["static"], 16), int(reply["ephemeral"], 16)
            terms["ee"] = pow(Y, mine.private, p)            # ee = Y^x: his own x
            terms["es"] = pow(B, mine.private, p)            # es = B^x: his own x again
            terms["se"] = pow(Y, stolen.private, p)          # se = Y^a = A^y: needs alice's a or the server's y; a guess
        session, th = handshake.key_schedule(mode, terms, hello, server_hello)
        confirm = ciphers.confirmation_tag(session.client_confirm, th).hex()
        channel.write_frame(sock, handshake.encode_message({"type": "client_finished", "confirm": confirm}))
        try:
            welcome = ciphers.AeadCipher(session.server_to_client).open(channel.read_frame(sock))
        except Exception as exc:                             # the server refused: an error, or it hung up
            return vocabulary.sentence("refused ({error})", error=type(exc).__name__)
        return vocabulary.sentence("logged in: {text}", text=welcome.decode()[:70])


widgets.table([{"mode": "static", "the thief, with the server's key b": log_in_as_alice(static_door.address, "static")},
               {"mode": "secure", "the thief, with the server's key b": log_in_as_alice(secure_door.address, "secure")}],
              max_width=110)

# %% lang=ru id=cell-032b en=27c587fd
def log_in_as_alice(address, mode):
    """Клиент вора: открытый ключ alice в приветствии, украденный ключ сервера b у него в руках."""
    A, p = people["alice"].public_key, stolen.group.p
    mine = keys.generate(stolen.group)                       # его собственный эфемерный ключ: x и X = g^x
    hello = {"type": "client_hello", "protocol": handshake.PROTOCOL, "version": handshake.PROTOCOL_VERSION,
             "service": "chat", "mode": mode, "group": stolen.group.name, "static": f"{A.value:#x}"}
    if mode == "secure":
        hello["ephemeral"] = f"{mine.public:#x}"
    hello["nonce"] = secrets.token_hex(32)
    hello = handshake.encode_message(hello)
    with socket.create_connection(address, timeout=5) as sock:
        channel.write_frame(sock, hello)
        server_hello = channel.read_frame(sock)
        channel.read_frame(sock)                             # server_finished: проверять его вору незачем
        reply = json.loads(server_hello)
        terms = {"ss": pow(A.value, stolen.private, p)}      # ss = A^b: в режиме static украденный b делает всё
        if mode == "secure":
            B, Y = int(reply["static"], 16), int(reply["ephemeral"], 16)
            terms["ee"] = pow(Y, mine.private, p)            # ee = Y^x: его собственный x
            terms["es"] = pow(B, mine.private, p)            # es = B^x: снова его x
            terms["se"] = pow(Y, stolen.private, p)          # se = Y^a = A^y: нужен a alice или y сервера; догадка
        session, th = handshake.key_schedule(mode, terms, hello, server_hello)
        confirm = ciphers.confirmation_tag(session.client_confirm, th).hex()
        channel.write_frame(sock, handshake.encode_message({"type": "client_finished", "confirm": confirm}))
        try:
            welcome = ciphers.AeadCipher(session.server_to_client).open(channel.read_frame(sock))
        except Exception as exc:                             # сервер отказал: ошибка или разрыв соединения
            return vocabulary.sentence("refused ({error})", error=type(exc).__name__)
        return vocabulary.sentence("logged in: {text}", text=welcome.decode()[:70])


widgets.table([{"mode": "static", "the thief, with the server's key b": log_in_as_alice(static_door.address, "static")},
               {"mode": "secure", "the thief, with the server's key b": log_in_as_alice(secure_door.address, "secure")}],
              max_width=110)

# %% [markdown] id=cell-032c
# In `static` mode the server greets the thief as **alice** — and would greet him as any student on the allowlist.
# This is *key-compromise impersonation*: a stolen key lets the thief pose as *others* to its owner. In `secure` mode the
# term `se` mixes alice's static key with the server's fresh ephemeral key: computing it takes alice's `a` or the
# server's `y`, and the thief has neither, so the server's Finished check fails. (The term `es`, the other way
# round, stops a thief with alice's key from posing as the server she pinned.)
#
# What a stolen private key gives the thief:
#
# | stolen key | mode | past recordings | in the future, he can pose as |
# |---|---|---|---|
# | the server's `b` | `static` | **all** of that server's sessions | the server, to everyone; **any student**, to the server |
# | the server's `b` | `secure` | none | the server, to everyone (until its key is replaced) |
# | alice's `a` | `static` | **all** of alice's sessions | alice, to everyone; **the server**, to alice |
# | alice's `a` | `secure` | none | alice, to everyone (until she is taken off the allowlist) |
#
# In every mode the owner's own identity goes with the key: a stolen key must be replaced (a new key, a new pin, a new allowlist row).

# %% [markdown] lang=ru id=cell-032c en=2fdaaba9
# В режиме `static` сервер приветствует вора как **alice** — и так же принял бы его под именем любого студента из списка.
# Это *подмена при компрометации ключа* (key-compromise impersonation): украденный ключ позволяет вору выдавать себя
# за *других* перед владельцем ключа. В режиме `secure` слагаемое `se` смешивает статический ключ alice со свежим
# эфемерным ключом сервера: чтобы его вычислить, нужен `a` alice или `y` сервера, а у вора нет ни того, ни другого, и проверка
# Finished на сервере не проходит. (Слагаемое `es`, симметрично, не даёт вору с ключом alice выдать себя за сервер, ключ которого она закрепила.)
#
# Что украденный закрытый ключ даёт вору:
#
# | украденный ключ | режим | прошлые записи | в будущем он может выдать себя за |
# |---|---|---|---|
# | `b` (ключ сервера) | `static` | **все** сеансы этого сервера | сервер — перед всеми; **любого студента** — перед сервером |
# | `b` (ключ сервера) | `secure` | ничего | сервер — перед всеми (пока ключ сервера не заменён) |
# | `a` (ключ alice) | `static` | **все** сеансы alice | alice — перед всеми; **сервер** — перед alice |
# | `a` (ключ alice) | `secure` | ничего | alice — перед всеми (пока её не уберут из списка разрешённых) |
#
# В любом режиме собственная личность владельца уходит вместе с ключом: украденный ключ нужно заменить (новый ключ, новое закрепление, новая строка в списке).

# %% [markdown] id=further-end
# Stop the two rooms and delete their folder:

# %% [markdown] lang=ru id=further-end en=d201d603
# Остановите обе комнаты и удалите их папку:

# %% id=further-stop
stop_all()
shutil.rmtree(door, ignore_errors=True)
running_servers(), door.exists()
