# A SIGALRM handler that allocates, running every millisecond while the main thread allocates.
import signal

received = []
calls = 0


def on_alarm(signum, frame):
    global calls
    calls += 1
    received.append(bytearray(7000) + bytes(range(256)))
    if len(received) > 50:
        del received[:25]


signal.signal(signal.SIGALRM, on_alarm)
signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
total = 0
rounds = 0
while rounds < 300000 and (rounds < 20000 or calls < 60):
    block = [bytes(i % 300) for i in range(20)]
    total += len(block[-1])
    rounds += 1
signal.setitimer(signal.ITIMER_REAL, 0, 0)
print("handler ran:", calls > 0, "total:", total // rounds)
