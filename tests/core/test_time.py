import pytest

from hasten.core.time import MAX_STEPS, Duration, Interval, Rates, Time, Timestamp, TimeUnit, check_run_length
from hasten.errors import ConfigError


@pytest.mark.parametrize(
    "text, value, unit",
    [
        ("10ep", 10, TimeUnit.EPOCH),
        ("500ba", 500, TimeUnit.BATCH),
        ("60000sp", 60000, TimeUnit.SAMPLE),
        ("2e5tok", 200000, TimeUnit.TOKEN),
        ("0.5dur", 0.5, TimeUnit.DURATION),
        (" 3 ep ", 3, TimeUnit.EPOCH),
    ],
)
def test_parse_every_unit(text, value, unit):
    time = Time.parse(text)
    assert time.value == value and time.unit is unit


@pytest.mark.parametrize("text", ["10", "ep", "10 epochs", "-3ep", "1.5.2ba", "", "1e5xyz"])
def test_malformed_time_lists_the_units(text):
    with pytest.raises(ConfigError) as info:
        Time.parse(text)
    message = str(info.value)
    for unit in ("ep", "ba", "sp", "tok", "dur"):
        assert unit in message


def test_dur_must_be_a_fraction():
    with pytest.raises(ConfigError, match="fraction"):
        Time.parse("1.5dur")


def test_duration_rejects_fractions_and_zero():
    assert Duration("10ep") == Time(10, TimeUnit.EPOCH)
    with pytest.raises(ConfigError):
        Duration("0.5dur")
    with pytest.raises(ConfigError, match="positive"):
        Duration("0ba")


def test_compare_within_a_unit_only():
    assert Time.parse("2ep") < Time.parse("3ep")
    assert Time.parse("3ep") >= Time.parse("3ep")
    with pytest.raises(TypeError, match="different units"):
        Time.parse("2ep") < Time.parse("3ba")


def test_str_round_trips():
    for text in ("10ep", "500ba", "0.25dur", "1.5ep"):
        assert str(Time.parse(text)) == text


def test_convert_between_units():
    rates = Rates(batches_per_epoch=100, samples_per_step=32, tokens_per_step=32 * 64)
    assert Time.parse("2ep").to("ba", rates).value == 200
    assert Time.parse("200ba").to("sp", rates).value == 6400
    assert Time.parse("6400sp").to("ep", rates).value == 2
    assert Time.parse("2048tok").to("ba", rates).value == 1
    assert Time.parse("0.5dur").to("ba", rates, max_duration=Time.parse("4ep")).value == 200


def test_convert_without_token_counts_is_an_error():
    with pytest.raises(ConfigError, match="tok"):
        Time.parse("100tok").to("ba", Rates(10, 8, 0))


def test_timestamp_reads_every_unit():
    stamp = Timestamp(epoch=2, batch=250, batch_in_epoch=50, sample=8000, token=0)
    assert stamp.get(TimeUnit.EPOCH, batches_per_epoch=100) == 2.5
    assert stamp.get(TimeUnit.BATCH) == 250
    assert stamp.get(TimeUnit.SAMPLE) == 8000
    restored = Timestamp()
    restored.load_state_dict(stamp.state_dict())
    assert restored.state_dict() == stamp.state_dict()


@pytest.mark.parametrize("text", ["1.5ba", "10.25sp", "0.5tok"])
def test_counts_of_batches_samples_tokens_are_whole(text):
    with pytest.raises(ConfigError, match="is a fraction of a"):
        Time.parse(text)
    assert Time.parse("1.5ep").value == 1.5 and Time.parse("2e3ba").value == 2000


def test_an_interval_must_be_positive():
    for text in ("0ba", "0ep", "0dur"):
        with pytest.raises(ConfigError, match="interval must be positive"):
            Interval(text)
    assert Interval("0.1dur").value == 0.1


def test_a_budget_that_cannot_finish_is_refused():
    check_run_length(MAX_STEPS, Duration("1ba"))
    with pytest.raises(ConfigError, match="more than the"):
        check_run_length(MAX_STEPS + 1, Duration("1e99ba"))
