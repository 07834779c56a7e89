"""Each test service starts, answers its real client, and stops by its own pid.

These never skip under CI=true: a service that cannot start fails the run.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import socket
import uuid

import pytest

from tiercel.testing import services


def _client(module: str):
    """A client library from tiercel[test]; missing, it skips locally and fails under CI."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        services.require(f"the {module} client", "pip install -e '.[test]'", str(exc))


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers kill(0) until reaped; Popen.wait() in stop() reaps it.
    return False


def test_kafka_produce_consume_with_group_and_commit(kafka_bootstrap):
    aiokafka = _client("aiokafka")
    topic, group = f"t-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"

    async def scenario():
        producer = aiokafka.AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:  # the topic does not exist yet: tansu creates it on first produce
            sent = [await producer.send_and_wait(topic, f"m{i}".encode(), key=b"same-key") for i in range(4)]
        finally:
            await producer.stop()
        partition = aiokafka.TopicPartition(topic, sent[0].partition)

        consumer = aiokafka.AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=2000,  # tansu holds the first JoinGroup for about half of this
            heartbeat_interval_ms=500,
        )
        await consumer.start()
        try:
            values = [(await asyncio.wait_for(consumer.getone(), 15)).value for _ in range(3)]
            await consumer.commit()
        finally:
            await consumer.stop()
        assert values == [b"m0", b"m1", b"m2"]

        # A member of the same group resumes after the commit (manual assignment: no rejoin wait).
        resumed = aiokafka.AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False)
        await resumed.start()
        try:
            resumed.assign([partition])
            assert await resumed.committed(partition) == 3
            assert (await asyncio.wait_for(resumed.getone(), 15)).value == b"m3"
        finally:
            await resumed.stop()

    asyncio.run(scenario())


def test_pulsar_shared_subscription_receive_acknowledge(pulsar_url):
    pulsar = _client("pulsar")
    topic = f"persistent://public/default/t-{uuid.uuid4().hex[:8]}"
    logger = pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn)
    client = pulsar.Client(pulsar_url, operation_timeout_seconds=10, logger=logger)
    try:
        consumers = [
            client.subscribe(topic, "workers", consumer_type=pulsar.ConsumerType.Shared) for _ in range(2)
        ]
        producer = client.create_producer(topic)
        for i in range(4):
            producer.send(f"m{i}".encode())
        received = []
        for consumer in consumers:  # shared: the messages are spread over both consumers
            while True:
                try:
                    message = consumer.receive(timeout_millis=300)
                except pulsar.Timeout:
                    break
                received.append(message.data())
                consumer.acknowledge(message)
        assert sorted(received) == [b"m0", b"m1", b"m2", b"m3"]

        for consumer in consumers:
            consumer.close()
        again = client.subscribe(topic, "workers", consumer_type=pulsar.ConsumerType.Shared)
        with pytest.raises(pulsar.Timeout):  # acknowledged messages are not redelivered
            again.receive(timeout_millis=300)
    finally:
        client.close()


def test_moto_s3_put_get_and_sqs_send_receive(s3_endpoint):
    boto3 = _client("boto3")
    options = dict(
        endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    s3 = boto3.client("s3", **options)
    bucket = f"b-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="dir/hello.txt", Body=b"hello")
    assert s3.get_object(Bucket=bucket, Key="dir/hello.txt")["Body"].read() == b"hello"

    sqs = boto3.client("sqs", **options)
    queue = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="hi")
    messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in messages] == ["hi"]
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=messages[0]["ReceiptHandle"])


def test_postgres_sqlalchemy_on_a_private_database(postgres_url):
    sqlalchemy = _client("sqlalchemy")
    engine = sqlalchemy.create_engine(postgres_url)
    try:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text("CREATE TABLE t (id int primary key, name text)"))
            connection.execute(sqlalchemy.text("INSERT INTO t VALUES (1, 'a')"))
        with engine.connect() as connection:
            assert connection.execute(sqlalchemy.text("SELECT name FROM t")).scalar_one() == "a"
            database = connection.execute(sqlalchemy.text("SELECT current_database()")).scalar_one()
        if not os.environ.get("TIERCEL_TEST_POSTGRES_URL"):
            assert database.startswith("tiercel_test_")
    finally:
        engine.dispose()


def test_redis_ping(redis_url):
    redis = _client("redis")
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.ping() is True
        client.set("k", "v")
        assert client.get("k") == b"v"
    finally:
        client.close()


@pytest.mark.parametrize("start", [services.kafka, services.pulsar, services.moto, services.redis_url])
def test_private_instance_stops_by_its_own_pid(start):
    try:
        service = start()
    except services.ServiceUnavailable as missing:
        services.require(missing.service, missing.how_to_get, missing.reason)
    if service.pid is None:
        pytest.skip(f"{service.name} comes from an existing server here, not a private instance")
    process = service.process
    with service:
        assert process.poll() is None
        assert "127.0.0.1:" in service.url
    assert process.poll() is not None and _gone(process.pid)
    assert service.log_path is not None and not service.log_path.exists()  # its temp dir is removed
    service.stop()  # idempotent


def test_postgres_private_database_is_dropped_on_stop():
    try:
        service = services.postgres_url()
    except services.ServiceUnavailable as missing:
        services.require(missing.service, missing.how_to_get, missing.reason)
    name = service.url.rsplit("/", 1)[-1]
    service.stop()
    if not name.startswith("tiercel_test_"):
        pytest.skip("the server does not let this user create databases")
    with pytest.raises(ConnectionError, match="does not exist"):
        services._pg_answers(service.url)


def test_existing_server_from_env_var_is_used_and_left_running(monkeypatch):
    with services.redis_url() as private:
        monkeypatch.setenv("TIERCEL_TEST_REDIS_URL", private.url)
        borrowed = services.redis_url()
        assert borrowed.url == private.url and borrowed.pid is None
        borrowed.stop()
        services._redis_probe(private.url)  # still answers: stop() never ends a server it did not start


def test_existing_server_that_does_not_answer_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TIERCEL_TEST_KAFKA_BOOTSTRAP", f"127.0.0.1:{services.free_port()}")
    with pytest.raises(services.ServiceStartError, match=r"Kafka at 127\.0\.0\.1:\d+ did not answer within 1s"):
        services.kafka(timeout=1)


def _never_answers(port):
    raise ConnectionRefusedError("nothing listening")


def test_broker_that_exits_early_reports_its_log(tmp_path):
    script = tmp_path / "broker.sh"
    script.write_text("#!/bin/sh\necho 'fatal: bad flag' >&2\nexit 3\n")
    script.chmod(0o755)
    with pytest.raises(services.ServiceStartError, match=r"(?s)exited with status 3.*fatal: bad flag"):
        services._spawn("fake", lambda port, _dir: [str(script)], _never_answers, lambda port: "x", timeout=5)


def test_broker_that_never_answers_times_out_and_is_stopped():
    with pytest.raises(services.ServiceStartError, match=r"did not answer on 127\.0\.0\.1:\d+ within 1s") as caught:
        services._spawn("silent", lambda port, _dir: ["sleep", "30"], _never_answers, lambda port: "x", timeout=1)
    pid = int(str(caught.value).split("(pid ")[1].split(")")[0])
    assert _gone(pid)


def test_shared_redis_lends_an_empty_database_and_flushes_it():
    """The fallback when no redis-server binary is installed: the machine's 6379."""
    try:
        borrowed = services._borrow_redis_db("redis://127.0.0.1:6379")
    except services.ServiceUnavailable as missing:
        services.require(missing.service, missing.how_to_get, missing.reason)
    redis = _client("redis")
    db = int(borrowed.url.rsplit("/", 1)[1])
    assert 1 <= db <= 15
    client = redis.Redis.from_url(borrowed.url)
    try:
        assert client.keys() == [b"tiercel:test:claim"]
        client.set("k", "v")
        again = services._borrow_redis_db("redis://127.0.0.1:6379")  # a second session gets another number
        assert again.url != borrowed.url
        again.stop()
        borrowed.stop()
        assert client.dbsize() == 0
    finally:
        borrowed.stop()
        client.close()


def test_pinned_port_and_restart_after_sigkill_kafka_comes_back_empty():
    aiokafka = _client("aiokafka")
    port = services.free_port()
    try:
        broker = services.kafka(port=port)
    except services.ServiceUnavailable as missing:
        services.require(missing.service, missing.how_to_get, missing.reason)

    async def produce():
        producer = aiokafka.AIOKafkaProducer(bootstrap_servers=broker.url)
        await producer.start()
        await producer.send_and_wait("before-restart", b"x")
        await producer.stop()

    async def topics():
        admin = _client("aiokafka.admin").AIOKafkaAdminClient(bootstrap_servers=broker.url)
        await admin.start()
        try:
            return await admin.list_topics()
        finally:
            await admin.close()

    with broker:
        assert broker.url == f"127.0.0.1:{port}"
        asyncio.run(produce())
        first_pid = broker.pid
        broker.restart(kill=True)
        assert broker.pid != first_pid and _gone(first_pid)
        assert broker.url == f"127.0.0.1:{port}"
        assert "before-restart" not in asyncio.run(topics())  # memory storage: a restart forgets all


def test_restart_pulsar_keeps_its_data():
    pulsar = _client("pulsar")
    try:
        broker = services.pulsar()
    except services.ServiceUnavailable as missing:
        services.require(missing.service, missing.how_to_get, missing.reason)
    with broker:
        logger = pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn)
        client = pulsar.Client(broker.url, operation_timeout_seconds=5, logger=logger)
        client.subscribe("kept", "s")  # the subscription keeps the message until acknowledged
        client.create_producer("kept").send(b"survives")
        client.close()
        broker.restart()
        client = pulsar.Client(broker.url, operation_timeout_seconds=5, logger=logger)
        try:
            consumer = client.subscribe("kept", "s")
            assert consumer.receive(timeout_millis=3000).data() == b"survives"
        finally:
            client.close()


def test_a_server_not_started_here_cannot_be_restarted(monkeypatch):
    with services.redis_url() as private:
        monkeypatch.setenv("TIERCEL_TEST_REDIS_URL", private.url)
        with pytest.raises(services.ServiceStartError, match="was not started by this process"):
            services.redis_url().restart()


def test_pinned_port_in_use_is_a_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(services.ServiceStartError, match=rf"(?s)exited .* on 127\.0\.0\.1:{port}.*in use"):
            services.redis_url(port=port)
