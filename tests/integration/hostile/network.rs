//! Property 6: offline steps running at the same time never share a loopback; within one step
//! the loopback works.

use crate::support::Test;

#[test]
fn offline_steps_running_at_once_cannot_talk_to_each_other() {
    let server = "import socket, time\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('127.0.0.1', 47123))\ns.listen()\ns.settimeout(3)\ntry:\n    s.accept()\n    print('ACCEPTED')\nexcept OSError:\n    print('alone')\n";
    let client = "import socket, time\nfor _ in range(30):\n    try:\n        socket.create_connection(('127.0.0.1', 47123), timeout=0.1)\n        print('CONNECTED')\n        break\n    except OSError:\n        time.sleep(0.1)\nelse:\n    print('alone')\n";
    let itself = "import socket, threading\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\ns.listen()\nthreading.Thread(target=lambda: s.accept()[0].sendall(b'hi')).start()\nc = socket.create_connection(s.getsockname())\nprint(c.recv(2).decode())\n";
    let test = Test::new()
        .file("server.py", server)
        .file("client.py", client)
        .file("itself.py", itself)
        .pipeline(
            "[steps.server]\nrun = \"python3 server.py > out/server\"\ninputs = [\"server.py\"]\noutputs = [\"out/server\"]\n\n[steps.client]\nrun = \"python3 client.py > out/client\"\ninputs = [\"client.py\"]\noutputs = [\"out/client\"]\n\n[steps.itself]\nrun = \"python3 itself.py > out/itself\"\ninputs = [\"itself.py\"]\noutputs = [\"out/itself\"]\n",
        );
    let run = test.gantry_run(&["--jobs", "3"]).success();
    let events = run.events();
    let started = |step: &str| {
        events
            .iter()
            .position(|event| event["event"] == "step_started" && event["step"] == step)
            .expect("started")
    };
    let first_finish = events
        .iter()
        .position(|event| event["event"] == "step_finished")
        .expect("finished");
    assert!(
        started("client") < first_finish && started("server") < first_finish,
        "they ran at once"
    );
    assert_eq!(test.read("out/server"), "alone\n");
    assert_eq!(test.read("out/client"), "alone\n");
    assert_eq!(
        test.read("out/itself"),
        "hi\n",
        "a step's own loopback works"
    );
}
