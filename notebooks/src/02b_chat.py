# Source of notebooks/02b_chat.ipynb: build it with `python tools/build_notebooks.py`.
# Cells start at `# %%` markers; tools/build_notebooks.py explains their roles and ids.
# The second half of the assignment's step 2 (notebook 02 was one 70-90 minute notebook; issue 18).

# %% [markdown] id=cell-000
# # 02b · An encrypted conversation
#
# *A chat that Eve cannot read, on the handshake of notebook 02 — with the crypto kept out of the message loop (task 2).*
#
# **After this notebook you will be able to**
#
# 1. run a chat through Eve's wiretap and say what she sees of it;
# 2. break the course's Caesar-keyed chat from captured bytes, and show why AES-GCM resists the same attack and catches tampering;
# 3. write a message loop that only calls `send` and `recv`, with keys and ciphers kept out of it.
#
# **You need:** notebook 02 and the threaded-server lab. **Time:** about 35 minutes.

# %% [markdown] lang=ru id=cell-000 en=1e33d169
# # 02b · Зашифрованный разговор
#
# *Чат, который Ева не может прочитать, на рукопожатии из блокнота 02, — а криптография вынесена из цикла обмена сообщениями (задание 2).*
#
# **После этого блокнота вы сможете**
#
# 1. запустить чат через прослушку Евы и сказать, что она из него видит;
# 2. взломать чат курса на шифре Цезаря по перехваченным байтам и показать, почему AES-GCM выдерживает ту же атаку и замечает подмену;
# 3. написать цикл обмена сообщениями, который только вызывает `send` и `recv`, а о ключах и шифрах ничего не знает.
#
# **Что нужно:** блокнот 02 и лабораторная о многопоточном сервере. **Время:** около 30 минут.

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
from labcrypto import ciphers, groups, keys, wiretap
from labcrypto.chat import ChatClient, ChatServer
from labcrypto.errors import DecryptionFailed
from labcrypto.handshake import ClientHandshake, ServerHandshake
from labcrypto.lab import checks_02b_chat as checks
from labcrypto.lab import plots, variants, widgets

# %% [markdown] id=cell-003
# **Your student id**, as in notebooks 01 and 02 (one exercise uses a message made from it):

# %% [markdown] lang=ru id=cell-003 en=71fc1726
# **Ваш идентификатор студента** — тот же, что в блокнотах 01 и 02 (в одном упражнении из него составляется сообщение):

# %% id=cell-004
STUDENT_ID = ""        # the same id as in notebook 01
my = variants.variant(variants.student_id(STUDENT_ID))
my

# %% lang=ru id=cell-004 en=45f78066
STUDENT_ID = ""        # тот же идентификатор, что в блокноте 01
my = variants.variant(variants.student_id(STUDENT_ID))
my

# %% [markdown] id=cell-022
# ## 1 · For real: a chat server, a client, and Eve
#
# The chat server runs in a background thread and returns as soon as it listens.
# Port 0 asks the system for any free port, so classmates on one machine never collide
# (the cell shows which port it got). The last cell of the notebook stops every server it started.
# Keys come from your keys folder (`keys.default_dir()`), as in notebook 01.

# %% [markdown] lang=ru id=cell-022 en=e4fc4f01
# ## 1 · По-настоящему: сервер чата, клиент и Ева
#
# Сервер чата работает в фоновом потоке, и ячейка завершается, как только он начал слушать порт.
# Порт 0 просит у системы любой свободный порт, поэтому одногруппники на одной машине не мешают друг другу (ячейка показывает, какой порт достался).
# Последняя ячейка блокнота останавливает все серверы, которые он запустил.
# Ключи берутся из вашей папки ключей (`keys.default_dir()`), как в блокноте 01.

# %% id=cell-023
key_dir = keys.default_dir()
server_key = keys.load_or_create("chat-server", key_dir)
alice_key = keys.load_or_create("alice", key_dir)
room = ChatServer(server_key, port=0, name="02-room").start()      # secure mode is the default
room

# %% lang=ru id=cell-023 en=ffed670e
key_dir = keys.default_dir()
server_key = keys.load_or_create("chat-server", key_dir)
alice_key = keys.load_or_create("alice", key_dir)
room = ChatServer(server_key, port=0, name="02-room").start()      # по умолчанию — защищённый режим
room

# %% [markdown] id=cell-024
# Eve taps the wire: a relay that passes every byte on unchanged and writes it down.
# Alice connects to the tap, which forwards to the server.
# She pins the server's key (`server_key=`), so a man in the middle would be caught (notebook 03 shows how).

# %% [markdown] lang=ru id=cell-024 en=89dabaa9
# Ева прослушивает линию: это ретранслятор, который передаёт каждый байт дальше без изменений и записывает его.
# Алиса подключается к прослушке, а та пересылает всё серверу.
# Алиса закрепляет ключ сервера (`server_key=`), поэтому «человек посередине» будет пойман (как — покажет блокнот 03).

# %% id=cell-025
tap = wiretap.Wiretap(room.address, name="02-tap").start()
alice = ChatClient.connect(*tap.address, alice_key, server_key=server_key.public_key)
alice

# %% [markdown] id=cell-026
# The chat panel on the left, what Eve sees on the right. Type a message and press Send:
# the server sends it back to everyone in the room, you included, and that is your confirmation.
# The panel is updated from the client's background thread, which only changes widget values and never prints.

# %% [markdown] lang=ru id=cell-026 en=19b6ef7d
# Слева — панель чата, справа — то, что видит Ева. Напишите сообщение и нажмите **Отправить**:
# сервер разошлёт его всем в комнате, в том числе вам, — это и есть подтверждение.
# Панель обновляется из фонового потока клиента. Этот поток только меняет значения виджетов и ничего не печатает.

# %% id=cell-027
panel = widgets.ChatPanel.for_client(alice)
eve_view = widgets.WireView.for_channel(alice.channel)
widgets.side_by_side(panel, eve_view)

# %% [markdown] id=cell-028
# If this notebook runs without a browser, nobody presses Send. The next cell sends a line
# through exactly the code the button uses, then shows what the room sent back.
#
# The panel's title and every line carry the one name the room gave Alice. This room keeps no list of names:
# all it knows of anyone is their public key, so it names her by her key's fingerprint (`SHA256:…`), and the
# server's greeting uses that same name. Notebook 03 binds names to keys with a list — the job a certificate does in TLS.

# %% [markdown] lang=ru id=cell-028 en=7ba2878a
# Если блокнот выполняется без браузера, кнопку «Отправить» никто не нажмёт. Следующая ячейка отправляет строку
# тем же кодом, что и кнопка, и показывает, что прислала комната.
#
# В заголовке панели и в каждой строке стоит одно и то же имя, которое комната дала Алисе. Списка имён у этой комнаты нет:
# о любом участнике она знает только его открытый ключ, поэтому называет Алису отпечатком её ключа (`SHA256:…`),
# и приветствие сервера обращается к ней по тому же имени. Блокнот 03 свяжет имена с ключами списком — в TLS это работа сертификата.

# %% id=cell-029
panel.submit("hello from the notebook: can anyone read this?")
room.say(f"welcome, {alice.name}")      # the name the room knows her by: her key's fingerprint
[f"{m.sender}: {m.text}" for m in alice.iter_messages(timeout=0.5)]

# %% lang=ru id=cell-029 en=b2c7948c
panel.submit("hello from the notebook: can anyone read this?")
room.say(f"welcome, {alice.name}")      # имя, под которым её знает комната: отпечаток её ключа
[f"{m.sender}: {m.text}" for m in alice.iter_messages(timeout=0.5)]

# %% [markdown] id=cell-030
# Eve's view of the whole connection, handshake included.
# She sees every public value; after the handshake she sees only ciphertext:

# %% [markdown] lang=ru id=cell-030 en=e7bba89f
# Всё соединение глазами Евы, включая рукопожатие.
# Она видит все открытые значения, а после рукопожатия — только шифртекст:

# %% id=cell-031
widgets.table(wiretap.eavesdropper_view(tap.frames()))

# %% [markdown] id=cell-032
# ## 2 · Attack, then fix
#
# ### The toy chat falls to a glance
#
# Same room, same client code, `mode="toy"`. The only change is the Caesar cipher keyed by a small `K`:

# %% [markdown] lang=ru id=cell-032 en=3d5b89e0
# ## 2 · Атака, затем защита
#
# ### Учебный чат читается с одного взгляда
#
# Та же комната, тот же код клиента, `mode="toy"`. Отличие одно — шифр Цезаря с маленьким ключом `K`:

# %% id=cell-033
toy_server_key = keys.generate(groups.TOY)
bob_toy_key = keys.generate(groups.TOY)
for _ in range(100):                 # only 20 toy keys: keep bob's different from the server's
    if bob_toy_key.public != toy_server_key.public:
        break
    bob_toy_key = keys.generate(groups.TOY)
toy_room = ChatServer(toy_server_key, mode="toy", port=0, name="02-toy-room").start()
toy_tap = wiretap.Wiretap(toy_room.address, name="02-toy-tap").start()
bob = ChatClient.connect(*toy_tap.address, bob_toy_key, mode="toy",
                         server_key=toy_server_key.public_key)
bob.send("the exam password is swordfish, do not tell anyone")
[m.text for m in bob.iter_messages(timeout=0.5)]

# %% lang=ru id=cell-033 en=d7592ddf
toy_server_key = keys.generate(groups.TOY)
bob_toy_key = keys.generate(groups.TOY)
for _ in range(100):                 # учебных ключей всего 20: ключ Боба должен отличаться от ключа сервера
    if bob_toy_key.public != toy_server_key.public:
        break
    bob_toy_key = keys.generate(groups.TOY)
toy_room = ChatServer(toy_server_key, mode="toy", port=0, name="02-toy-room").start()
toy_tap = wiretap.Wiretap(toy_room.address, name="02-toy-tap").start()
bob = ChatClient.connect(*toy_tap.address, bob_toy_key, mode="toy",
                         server_key=toy_server_key.public_key)
bob.send("the exam password is swordfish, do not tell anyone")
[m.text for m in bob.iter_messages(timeout=0.5)]

# %% id=cell-034
toy_frames = [f for f in toy_tap.frames(wiretap.C2S) if f.kind == "data"]
stolen = toy_frames[0].payload
stolen              # what Eve captured: Caesar-shifted JSON

# %% lang=ru id=cell-034 en=a80479b0
toy_frames = [f for f in toy_tap.frames(wiretap.C2S) if f.kind == "data"]
stolen = toy_frames[0].payload
stolen              # что перехватила Ева: JSON, сдвинутый шифром Цезаря

# %% [markdown] id=cell-035
# ### Exercise: read it without the key
#
# Write `break_caesar(ciphertext)`, which returns the plaintext bytes.
# Eve does not know `K`, but the cipher shifts every byte by `K mod 256`, so there are only 256 keys.
# Try them all, give each candidate a score for how much it looks like text, and keep the best.
# A score that works: +1 for every lowercase letter or space, −1 for every byte that is not printable ASCII (below 32 or above 126).
# Remember that shifts wrap around: `(byte - k) % 256`.

# %% [markdown] lang=ru id=cell-035 en=aed92120
# ### Упражнение: прочитать без ключа
#
# Напишите `break_caesar(ciphertext)`, которая возвращает байты открытого текста.
# Ева не знает `K`, но шифр сдвигает каждый байт на `K mod 256`, поэтому ключей всего 256.
# Переберите их все, оцените, насколько каждый кандидат похож на текст, и оставьте лучшего.
# Подойдёт такая оценка: +1 за каждую строчную латинскую букву или пробел, −1 за каждый байт вне печатного ASCII (меньше 32 или больше 126).
# Помните, что сдвиг идёт по кругу: `(byte - k) % 256`.

# %% solution grade_id=break_caesar
def break_caesar(ciphertext):
    """The plaintext of a toy-mode frame, found without the key."""
    ### BEGIN SOLUTION
    def looks_like_text(data):
        good = sum(97 <= byte <= 122 or byte == 32 for byte in data)
        return good - sum(byte < 32 or byte > 126 for byte in data)

    candidates = [bytes((b - k) % 256 for b in ciphertext) for k in range(256)]
    return max(candidates, key=looks_like_text)
    ### END SOLUTION

# %% lang=ru grade_id=break_caesar en=4c1aeccb
def break_caesar(ciphertext):
    """Открытый текст кадра учебного режима, найденный без ключа."""
    ### BEGIN SOLUTION
    def looks_like_text(data):
        good = sum(97 <= byte <= 122 or byte == 32 for byte in data)
        return good - sum(byte < 32 or byte > 126 for byte in data)

    candidates = [bytes((b - k) % 256 for b in ciphertext) for k in range(256)]
    return max(candidates, key=looks_like_text)
    ### END SOLUTION

# %% tests grade_id=check_break_caesar points=2
"""Check break_caesar: toy-mode messages read without the key."""
checks.check_break_caesar(break_caesar)
### BEGIN HIDDEN TESTS
checks.hidden_break_caesar(break_caesar, STUDENT_ID)
### END HIDDEN TESTS

# %% lang=ru grade_id=check_break_caesar en=e3d25e59
"""Проверка break_caesar: сообщения учебного режима читаются без ключа."""
checks.check_break_caesar(break_caesar)
### BEGIN HIDDEN TESTS
checks.hidden_break_caesar(break_caesar, STUDENT_ID)
### END HIDDEN TESTS

# %% [markdown] id=cell-038
# Eve's own version (the package's `wiretap.crack_caesar`), and the score of every shift.
# One shift stands out, and that shift is the key:

# %% [markdown] lang=ru id=cell-038 en=a95a4224
# Версия самой Евы (`wiretap.crack_caesar` из пакета) и оценка каждого сдвига.
# Один сдвиг резко выделяется — он и есть ключ:

# %% id=cell-039
shift, plaintext = wiretap.crack_caesar(stolen)
lowercase_share = [sum(97 <= (b - k) % 256 <= 122 for b in stolen) / len(stolen) for k in range(256)]
plots.caesar_scores(lowercase_share, best=shift);

# %% id=cell-040
plaintext

# %% [markdown] id=cell-041
# She did not even need the shift: with `p = 23` she can take `A` and `B` from the hellos
# and find `K` by trying all 22 exponents, as in notebook 01:

# %% [markdown] lang=ru id=cell-041 en=6b044670
# Ей даже не нужен был сдвиг: при `p = 23` она берёт `A` и `B` из приветствий
# и находит `K`, перебрав все 22 показателя степени, как в блокноте 01:

# %% id=cell-042
wiretap.recover_toy_secret(toy_tap.frames()) % 256 == shift

# %% [markdown] id=cell-043
# ### Secure mode: nothing to count
#
# Send one long message in each room and compare the bytes on the wire.
# Caesar only moves the letters' pile of counts somewhere else. AES-GCM output spreads evenly over all 256 byte values:

# %% [markdown] lang=ru id=cell-043 en=c02bdfbe
# ### Защищённый режим: считать нечего
#
# Отправьте по одному длинному сообщению в каждую комнату и сравните байты на линии.
# Шифр Цезаря лишь сдвигает пики частот букв на другие значения байтов. Выход AES-GCM равномерно распределён по всем 256 значениям:

# %% id=cell-044
long_text = " ".join(["the quick brown fox jumps over the lazy dog"] * 60)
bob.send(long_text)
alice.send(long_text)
[len(m.text) for m in bob.iter_messages(timeout=0.5)], [len(m.text) for m in alice.iter_messages(timeout=0.5)]

# %% id=cell-045
def last_data_frame(tap):
    return [f for f in tap.frames(wiretap.C2S) if f.kind == "data"][-1].payload

plots.byte_histograms({
    "plaintext": long_text.encode(),
    "toy (Caesar)": last_data_frame(toy_tap),
    "secure (AES-GCM)": last_data_frame(tap),
});

# %% [markdown] id=cell-046
# And a flipped byte? In toy mode it silently changes the message.
# In secure mode the 16-byte tag no longer matches and the receiver refuses the frame (`DecryptionFailed`):

# %% [markdown] lang=ru id=cell-046 en=b7af3534
# А если изменить один байт? В учебном режиме сообщение молча меняется.
# В защищённом режиме 16-байтовый тег аутентификации перестаёт сходиться, и получатель отвергает кадр (`DecryptionFailed`):

# %% id=cell-047
toy_cipher = ciphers.CaesarCipher(42)
tampered = bytearray(toy_cipher.seal(b"pay 10 euros to bob"))
tampered[5] ^= 0x01                     # Eve flips one bit of "10"
toy_cipher.open(bytes(tampered))        # no error, a different message

# %% lang=ru id=cell-047 en=85d602aa
toy_cipher = ciphers.CaesarCipher(42)
tampered = bytearray(toy_cipher.seal(b"pay 10 euros to bob"))
tampered[5] ^= 0x01                     # Ева меняет один бит в «10»
toy_cipher.open(bytes(tampered))        # ошибки нет, но сообщение уже другое

# %% id=cell-048
c, s = ClientHandshake(alice_key), ServerHandshake(server_key)    # a secure handshake by hand
s_hello, s_finished = s.receive(c.start())
[c_finished] = c.receive(s_hello) + c.receive(s_finished)
s.receive(c_finished)
alice_seals, bob_opens = c.session.ciphers()[0], s.session.ciphers()[1]

# %% lang=ru id=cell-048 en=aa8c9d37
c, s = ClientHandshake(alice_key), ServerHandshake(server_key)    # защищённое рукопожатие вручную
s_hello, s_finished = s.receive(c.start())
[c_finished] = c.receive(s_hello) + c.receive(s_finished)
s.receive(c_finished)
alice_seals, bob_opens = c.session.ciphers()[0], s.session.ciphers()[1]

# %% id=cell-049
tampered = bytearray(alice_seals.seal(b"pay 10 euros to bob"))
tampered[5] ^= 0x01                     # the same bit flip
try:
    bob_opens.open(bytes(tampered))
except DecryptionFailed as exc:
    refused = exc
refused

# %% lang=ru id=cell-049 en=f6e3b121
tampered = bytearray(alice_seals.seal(b"pay 10 euros to bob"))
tampered[5] ^= 0x01                     # тот же изменённый бит
try:
    bob_opens.open(bytes(tampered))
except DecryptionFailed as exc:
    refused = exc
refused

# %% [markdown] id=cell-050
# ## 3 · This session, drawn from what just ran
#
# The handshake messages come from the client's session transcript, and the data frames from Eve's tap.

# %% [markdown] lang=ru id=cell-050 en=2582fc8e
# ## 3 · Этот сеанс на схеме — по тому, что только что выполнилось
#
# Сообщения рукопожатия взяты из записи сеанса клиента (transcript), кадры данных — из прослушки Евы.

# %% id=cell-051
steps = plots.transcript_steps(alice.channel.session.transcript)
steps += [("client" if f.direction == wiretap.C2S else "server", wiretap.describe(f.payload))
          for f in tap.frames() if f.kind == "data"][:6]
plots.sequence_diagram(steps);

# %% [markdown] id=cell-052
# ## 4 · Exercise: a message loop that knows nothing about keys (task 2)
#
# Task 2 asks to separate key generation and encryption from the message exchange.
# The layers: the loop on top sees only `send` and `recv`.

# %% [markdown] lang=ru id=cell-052 en=4bf7a05f
# ## 4 · Упражнение: цикл сообщений, который ничего не знает о ключах (задание 2)
#
# Задание 2 курса: «Проведите рефакторинг кода клиента и сервера так, чтобы все, относящееся к генерации ключей, установлению режима шифрования, шифрованию исходящих и дешифрованию входящих сообщений было отделено от основного алгоритма обмена сообщениями».
# Вот слои: цикл наверху видит только `send` и `recv`.

# %% id=cell-053
plots.layers();

# %% [markdown] id=cell-054
# Write `chat_loop(channel, lines)`: for each line, `channel.send(line)`, then receive the reply
# with `channel.recv_text(timeout=5)`; return the list of replies.
# Use nothing but the channel's `send`/`recv`/`recv_text`: no sockets, keys, ciphers or `pickle`.
# The check runs it against a stand-in channel that has nothing else, then over a real `SecureChannel`.

# %% [markdown] lang=ru id=cell-054 en=1e53c003
# Напишите `chat_loop(channel, lines)`: для каждой строки вызовите `channel.send(line)`, затем получите ответ
# через `channel.recv_text(timeout=5)`; верните список ответов.
# Пользуйтесь только методами канала `send`/`recv`/`recv_text`: никаких сокетов, ключей, шифров и `pickle`.
# Проверка запускает функцию сначала с подставным каналом, у которого больше ничего нет, затем поверх настоящего `SecureChannel`.

# %% solution grade_id=chat_loop
def chat_loop(channel, lines):
    """Send each line and collect the reply to each; return the replies as text."""
    ### BEGIN SOLUTION
    replies = []
    for line in lines:
        channel.send(line)
        replies.append(channel.recv_text(timeout=5))
    return replies
    ### END SOLUTION

# %% lang=ru grade_id=chat_loop en=42285bd3
def chat_loop(channel, lines):
    """Отправить каждую строку и собрать ответ на каждую; вернуть ответы текстом."""
    ### BEGIN SOLUTION
    replies = []
    for line in lines:
        channel.send(line)
        replies.append(channel.recv_text(timeout=5))
    return replies
    ### END SOLUTION

# %% tests grade_id=check_chat_loop points=2
"""Check chat_loop: only send/recv, replies in order, works over a real channel."""
checks.check_chat_loop(chat_loop)
### BEGIN HIDDEN TESTS
checks.hidden_chat_loop(chat_loop)
### END HIDDEN TESTS

# %% lang=ru grade_id=check_chat_loop en=cccb8315
"""Проверка chat_loop: только send/recv, ответы по порядку, работа поверх настоящего канала."""
checks.check_chat_loop(chat_loop)
### BEGIN HIDDEN TESTS
checks.hidden_chat_loop(chat_loop)
### END HIDDEN TESTS

# %% [markdown] id=cell-057
# ## Summary
#
# * Eve sees every public value of the handshake and, after it, only ciphertext.
# * A Caesar shift keyed by a small `K` is read by anyone who tries 256 shifts. AES-GCM with keys derived by HKDF looks like noise and rejects a single flipped bit.
# * Key exchange and encryption live in the channel; the message loop only calls `send` and `recv` (task 2).
#
# **Control questions this prepares for.** *How does SSL work in practice?* TLS does what you stepped through in notebook 02 and saw running here:
# a ClientHello and ServerHello carrying Diffie-Hellman key shares and random nonces, keys derived with HKDF from the shared secret and the transcript,
# *Finished* messages that prove both sides derived the same keys, then records encrypted with an AEAD such as AES-GCM.
# What TLS adds is a certificate that binds the server's key to its name (notebook 03).
# Also from the previous lab: *which attacks exist on classical ciphers?* Brute force over a small key space and frequency analysis, both shown above.
#
# **Clean up.** Close the clients and stop the servers and taps this notebook started:

# %% [markdown] lang=ru id=cell-057 en=6742e9ec
# ## Итоги
#
# * Ева видит все открытые значения рукопожатия, а после него — только шифртекст.
# * Сдвиг Цезаря с маленьким ключом `K` прочтёт любой, кто переберёт 256 сдвигов. AES-GCM с ключами, выработанными через HKDF, выглядит как шум и отвергает даже один изменённый бит.
# * Обмен ключами и шифрование живут в канале; цикл сообщений только вызывает `send` и `recv` (задание 2).
#
# **К каким контрольным вопросам это готовит.** *Как работает SSL на практике?* TLS делает то, что вы прошли по шагам в блокноте 02 и увидели в работе здесь.
# ClientHello и ServerHello несут открытые значения Диффи — Хеллмана (key shares) и случайные nonce. Ключи выводятся через HKDF из общего секрета и записи рукопожатия.
# Сообщения *Finished* доказывают, что обе стороны получили одни и те же ключи. Дальше записи шифруются AEAD-шифром, например AES-GCM.
# Чего здесь нет, так это сертификата: в TLS он связывает ключ сервера с его именем (блокнот 03).
# И из прошлой лабораторной: *какие существуют атаки на классические шифры?* Полный перебор маленького пространства ключей и частотный анализ — оба показаны выше.
#
# **Уборка.** Закройте клиентов и остановите серверы и прослушки, которые запустил этот блокнот:

# %% id=cell-058
widgets.kernel_status()     # what this kernel runs now; the button stops it all

# %% lang=ru id=cell-058 en=ec73d38a
widgets.kernel_status()     # что сейчас работает в этом ядре; кнопка останавливает всё

# %% [markdown] id=cell-059
# The panel above is the kernel's view: every server and tap this notebook started (re-running a cell *replaces* a named server, it never piles up a second one), its threads and the pool ports it holds. The next cell does what the button does, so the notebook also cleans up when nobody clicks:

# %% [markdown] lang=ru id=cell-059 en=7dc7c476
# Панель выше показывает ядро изнутри: каждый сервер и каждую прослушку, запущенные блокнотом, их потоки и занятые порты из пула.
# (Повторный запуск ячейки *заменяет* именованный сервер и никогда не добавляет второй.)
# Следующая ячейка делает то же, что кнопка, так что блокнот прибирает за собой, даже если кнопку никто не нажал:

# %% id=cell-060
from labcrypto.server import running_servers, stop_all

alice.close()
bob.close()
stop_all()              # every server and tap of this kernel, including ones from re-run cells
running_servers()

# %% lang=ru id=cell-060 en=dff0ba88
from labcrypto.server import running_servers, stop_all

alice.close()
bob.close()
stop_all()              # все серверы и прослушки ядра, в том числе из перезапущенных ячеек
running_servers()

# %% [markdown] id=cell-061
# **Next:** [03 · Who may join: the allowlist](03_allowlist.ipynb) — the server checks every client's key, and Eve's man in the middle fails.

# %% [markdown] lang=ru id=cell-061 en=cf1aef92
# **Дальше:** [03 · Кто может войти: список разрешённых ключей](03_allowlist.ipynb) — сервер проверяет ключ каждого клиента, и атака «человек посередине» в исполнении Евы проваливается.

