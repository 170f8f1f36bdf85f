import pytest

from tinyresnet import spec
from tinyresnet.spec import BasicBlock, Conv, Dropout, FC, Pool, SpecError


def test_parses_the_paper_notation_in_all_its_spellings():
    text = "(Conv 64) × 2, Avg2, BB512, (BB 64)x3, (BB 128) x2, Max 2, Dropout 0.3, Dropout, FC 200"
    assert spec.parse_spec(text) == (
        Conv(64), Conv(64), Pool("avg", 2), BasicBlock(512),
        BasicBlock(64), BasicBlock(64), BasicBlock(64), BasicBlock(128), BasicBlock(128),
        Pool("max", 2), Dropout(0.3), Dropout(0.5), FC(200),
    )


def test_one_item_per_line_and_latex_repeats_as_in_the_extracted_paper():
    text = "Conv 32\n$(BB 64) \\times 2$\nAvg 2\nFC 10\n"
    assert spec.parse_spec(text) == (Conv(32), BasicBlock(64), BasicBlock(64), Pool("avg", 2), FC(10))


@pytest.mark.parametrize("name", sorted(spec.PRESETS))
def test_presets_round_trip_through_the_canonical_text(name):
    parsed = spec.parse_spec(name)
    text = spec.format_spec(parsed)
    assert spec.parse_spec(text) == parsed
    assert spec.format_spec(text) == text


def test_canonical_text_groups_runs():
    assert spec.format_spec("Conv 64, Conv 64, Avg 2, BB 64, FC 200") == "(Conv 64) x 2, Avg 2, BB 64, FC 200"


def test_layer_counts_follow_the_paper_convention():
    counts = {name: spec.count_layers(name) for name in spec.PRESETS}
    # Table 1 prints 21 and 15 for Nets 4 and 5; their columns give 19 and 13.
    assert counts == {"net1": 15, "net2": 12, "net3": 17, "net4": 19, "net5": 13, "net6": 15,
                      "cifar7": 7, "cifar9": 9}


def test_net6_is_net1_with_every_bb_written_as_two_convs():
    net1 = spec.parse_spec("net1")
    expanded = []
    for layer in net1:
        expanded += [Conv(layer.filters)] * 2 if isinstance(layer, BasicBlock) else [layer]
    assert tuple(expanded) == spec.parse_spec("net6")


@pytest.mark.parametrize("text, message", [
    ("Conv 64, Foo 3, FC 10", r"item 2 \('Foo 3'\): unknown layer"),
    ("Conv, FC 10", r"item 1 \('Conv'\): Conv width must be a positive integer, got nothing"),
    ("Conv 0, FC 10", r"item 1 \('Conv 0'\): Conv width must be a positive integer, got 0"),
    ("BB -4, FC 10", r"item 1 \('BB -4'\): BB width must be a positive integer, got -4"),
    ("BB 6.5, FC 10", r"item 1 .*BB width must be a positive integer, got '6.5'"),
    ("(Conv 64) x 0, FC 10", r"item 1 .*repeat count must be a positive integer, got 0"),
    ("(Conv 64) x two, FC 10", r"item 1 .*repeat count must be a positive integer, got 'two'"),
    ("(Conv 64 x 2, FC 10", r"item 1 .*bad repeat"),
    ("Conv 64, FC 10, Avg 2", r"layer 2 \('FC 10'\): FC must be the last layer"),
    ("Conv 64, Avg 2", r"must end with the classifier 'FC N'"),
    ("Avg 2, Max 2, FC 10", r"nothing but pooling"),
    ("Conv 8, Dropout 1.0, FC 10", r"item 2 .*dropout rate must be in \[0, 1\), got 1.0"),
    ("Conv 8, Dropout -0.1, FC 10", r"item 2 .*dropout rate must be in \[0, 1\)"),
    ("Conv 8, Dropout x, FC 10", r"item 2 .*dropout rate must be a number"),
    ("  ,  ", r"empty spec"),
])
def test_errors_name_the_item_and_its_text(text, message):
    with pytest.raises(SpecError, match=message):
        spec.parse_spec(text)


def test_pooling_below_one_pixel_is_reported_with_its_item():
    # 64 -> 32 -> 16 -> 8 -> 4 -> 2 fits; on 16x16 inputs the 5th pool (layer 13
    # once repeats are expanded) has a 1x1 map left.
    list(spec.feature_shapes("net1", (64, 64, 3)))
    with pytest.raises(SpecError, match=r"layer 13 \('Avg 2'\): pooling a 1x1 feature map by 2"):
        list(spec.feature_shapes("net1", (16, 16, 3)))


def test_forward_flops_of_a_tiny_net_by_hand():
    # Conv 8 on 8x8x3: 2*64*9*3*8 = 27,648; BB 16: 2*64*9*(8*16 + 16*16) = 442,368;
    # Avg 2 -> 4x4x16 = 256 features; FC 10: 2*256*10 = 5,120.
    assert spec.forward_flops("Conv 8, BB 16, Avg 2, FC 10", (8, 8, 3)) == 27_648 + 442_368 + 5_120
    # The projection shortcut adds a 1x1 conv 8->16 at 8x8: 2*64*8*16 = 16,384.
    assert spec.forward_flops("Conv 8, BB 16, Avg 2, FC 10", (8, 8, 3), shortcut="projection") == \
        27_648 + 442_368 + 5_120 + 16_384


def test_width_scales_convs_with_a_floor_of_eight():
    assert [spec.scale_width(f, 0.25) for f in (16, 64, 200)] == [8, 16, 50]
    shapes = [s for _, s in spec.feature_shapes("Conv 64, BB 128, FC 10", (8, 8, 3), width=0.5)]
    assert shapes == [(8, 8, 32), (8, 8, 64)]


@pytest.mark.parametrize("rate", [0.9999999, 0.1234567, 0.3, 0.0, 1e-9, 0.5000001])
def test_dropout_rates_round_trip_exactly(rate):
    text = spec.format_spec((Conv(8), Dropout(rate), FC(10)))
    assert spec.parse_spec(text) == (Conv(8), Dropout(rate), FC(10)), text


@pytest.mark.parametrize("layers, message", [
    ((Conv(0), FC(10)), r"width must be a positive integer, got 0"),
    ((Conv(8.5), FC(10)), r"width must be a positive integer, got 8.5"),
    ((BasicBlock(-1), FC(10)), r"width must be a positive integer, got -1"),
    ((Conv(8), Dropout(1.5), FC(10)), r"dropout rate must be in \[0, 1\), got 1.5"),
    ((Conv(8), Pool("min", 2), FC(10)), r"pooling kind must be one of avg, max, got 'min'"),
    ((Conv(8), Pool("avg", 0), FC(10)), r"pool size must be a positive integer, got 0"),
    ((Conv(8), FC(0)), r"FC units must be a positive integer, got 0"),
    ((Conv(8), "BB 8", FC(10)), r"not a spec layer: 'BB 8'"),
])
def test_spec_tuples_are_validated_like_text(layers, message):
    with pytest.raises(SpecError, match=message):
        spec.parse_spec(layers)


def test_comments_may_hold_commas():
    text = "Conv 8  # stem, as in Net 1\nBB 16, Avg 2  # one stage, then pool\nFC 10"
    assert spec.parse_spec(text) == (Conv(8), BasicBlock(16), Pool("avg", 2), FC(10))


def test_repeat_counts_are_bounded():
    assert len(spec.parse_spec(f"(Conv 8) x {spec.MAX_REPEAT}, FC 10")) == spec.MAX_REPEAT + 1
    with pytest.raises(SpecError, match=r"item 1 .*repeat count 1000000000 is over the limit of 1000"):
        spec.parse_spec("(Conv 8) x 1000000000, FC 10")


def test_the_spec_as_built_has_the_data_s_classes():
    assert spec.format_spec(spec.with_classes("Conv 8, FC 200", 20)) == "Conv 8, FC 20"
    assert spec.with_classes("net1", None) == spec.parse_spec("net1")


def test_presets_carry_their_input_size():
    assert spec.PRESETS["net1"].input_shape == (64, 64, 3)
    assert spec.PRESETS["cifar7"].input_shape == (32, 32, 3)
    for name, preset in spec.PRESETS.items():
        list(spec.feature_shapes(name, preset.input_shape))  # every preset fits its own input size
