using System.Collections;
using System.Text.Json;
using Svg.ML.Checkpoints;
using Svg.ML.Tests.Parity;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Checkpoints;

/// <summary>The official formats load under the official keys with exactly the values the generator wrote.</summary>
public class OfficialCheckpointTests
{
    static readonly float[] Bf16Periods = [1f, 1.3359375f, 1.78125f, 2.375f, 3.15625f, 4.21875f, 5.625f, 7.5f, 10f, 13.3125f, 17.75f, 23.75f, 31.625f, 42.25f, 56.25f, 75f];

    [Fact]
    public void DinoV3Pth_LoadsOfficialKeys_KeepsBf16PeriodsAsFloat32()
    {
        var loaded = OfficialCheckpoints.LoadDinoV3(Fixtures.Path_("dinov3_tiny.pth"));
        Fixtures.AssertSameTensors(Fixtures.Expected("dinov3_tiny.pth").Tensors, loaded);
        var periods = loaded["rope_embed.periods"];
        Assert.Equal(ScalarType.Float32, periods.dtype);
        Assert.Equal(Bf16Periods, periods.data<float>().ToArray()); // the released bf16 values, not recomputed
    }

    [Fact]
    public void DinoV3Pth_MatchesTorchSharpPyBridgeReader()
    {
        // An independent reader of the torch zip format agrees with ours on every tensor (validates the fixtures too).
        Hashtable other = TorchSharp.PyBridge.PyTorchUnpickler.UnpickleStateDict(Fixtures.Path_("dinov3_tiny.pth"));
        using var ckpt = TorchCheckpoint.Open(Fixtures.Path_("dinov3_tiny.pth"));
        var ours = ckpt.ReadStateDict(ckpt.Root);
        Assert.Equal(ours.Count, other.Count);
        foreach (var (key, t) in ours)
        {
            var theirs = (Tensor)other[key]!;
            Assert.Equal(t.dtype, theirs.dtype);
            Assert.True(Fixtures.Same(t, theirs), key);
        }
        Assert.Equal(ScalarType.BFloat16, ours["rope_embed.periods"].dtype);
    }

    [Fact]
    public void DinoV3HuggingFaceFolder_ConvertsToOfficialKeys()
    {
        var loaded = OfficialCheckpoints.LoadDinoV3(Fixtures.Path_("dinov3_tiny_hf"));
        var expected = Fixtures.Expected("dinov3_tiny_hf").Tensors; // official keys; k bias zero; no periods
        var periods = loaded["rope_embed.periods"];
        loaded.Remove("rope_embed.periods");
        Fixtures.AssertSameTensors(expected, loaded);
        // The masked k bias is zero and bias_mask has the official q=1, k=0, v=1 pattern: the effective bias equals the .pth's.
        var pth = OfficialCheckpoints.LoadDinoV3(Fixtures.Path_("dinov3_tiny.pth"));
        var effectivePth = pth["blocks.1.attn.qkv.bias"] * pth["blocks.1.attn.qkv.bias_mask"];
        var effectiveHf = loaded["blocks.1.attn.qkv.bias"] * loaded["blocks.1.attn.qkv.bias_mask"];
        Assert.True(Fixtures.Same(effectivePth, effectiveHf));
        Assert.Equal(pth.Keys.Order(), loaded.Keys.Append("rope_embed.periods").Order());
        // Periods: the fp32 value the official init computes (head 64, base 100), within bf16 rounding of the .pth's.
        Assert.Equal(ScalarType.Float32, periods.dtype);
        Assert.True(periods.allclose(pth["rope_embed.periods"], rtol: 4e-3, atol: 0));
    }

    [Fact]
    public void RopePeriods_EqualTheOfficialFloat32Init_BitExactly()
    {
        // dinov3_tiny golden: head dim 64, base 100; its periods are what the official _init_weights computed in fp32.
        var golden = new GoldenCase(GoldenCase.Folder, "dinov3_tiny").Weights["rope_embed.periods"];
        using var computed = DinoV3Layout.RopePeriods(64, 100);
        Assert.Equal(golden.data<float>().ToArray(), computed.data<float>().ToArray());
    }

    [Fact]
    public void DinoV3HuggingFaceFile_WithoutConfig_NeedsNumHeads()
    {
        using var tmp = new TempFolder();
        var file = tmp.File("model.safetensors");
        File.Copy(Fixtures.Path_("dinov3_tiny_hf/model.safetensors"), file);
        var e = Assert.Throws<CheckpointFormatException>(() => OfficialCheckpoints.LoadDinoV3(file));
        Assert.Contains(file, e.Message);
        Assert.Contains("numHeads", e.Message);
        var loaded = OfficialCheckpoints.LoadDinoV3(file, numHeads: 1);
        Assert.Equal(16, loaded["rope_embed.periods"].numel());
    }

    [Fact]
    public void DinoV3HuggingFace_PrefixAndTaskHead_AreHandled_PlainMlpMapsToFc()
    {
        var hf = SafeTensors.Load(Fixtures.Path_("dinov3_tiny_hf/model.safetensors")).Tensors;
        // A wrapping model: every backbone key under "dinov3_vit.", plus a classifier head outside it.
        var wrapped = hf.ToDictionary(kv => "dinov3_vit." + kv.Key, kv => kv.Value);
        wrapped["classifier.weight"] = zeros(10, 64);
        var fromWrapped = DinoV3Layout.FromHuggingFace(wrapped, numHeads: 1);
        var direct = DinoV3Layout.FromHuggingFace(hf, numHeads: 1);
        Assert.Equal(direct.Keys, fromWrapped.Keys);
        // Non-gated MLP (vits16, vitb16, vitl16): up/down_proj -> fc1/fc2.
        var plain = hf.Where(kv => !kv.Key.Contains("gate_proj")).ToDictionary(kv => kv.Key, kv => kv.Value);
        var converted = DinoV3Layout.FromHuggingFace(plain, numHeads: 1);
        Assert.Contains("blocks.0.mlp.fc1.weight", converted.Keys);
        Assert.Contains("blocks.0.mlp.fc2.bias", converted.Keys);
        Assert.True(Fixtures.Same(converted["blocks.0.mlp.fc1.weight"], hf["layer.0.mlp.up_proj.weight"]));
        // A key with no official counterpart is an error, not silently dropped.
        var extra = new Dictionary<string, Tensor>(hf) { ["layer.0.attention.extra.weight"] = zeros(1) };
        var e = Assert.Throws<CheckpointFormatException>(() => DinoV3Layout.FromHuggingFace(extra, numHeads: 1));
        Assert.Contains("layer.0.attention.extra.weight", e.Message);
    }

    [Fact]
    public void SvgDiT_EmaCheckpoint_LoadsTheEmaStateDict()
    {
        var loaded = OfficialCheckpoints.LoadSvgDiT(Fixtures.Path_("svg_dit_ema.pt"));
        Fixtures.AssertSameTensors(Fixtures.Expected("svg_dit_ema.pt").Tensors, loaded);
    }

    [Fact]
    public void SvgDiT_TrainingCheckpoint_PrefersEma_AndHonoursAnExplicitEntry()
    {
        var expected = Fixtures.Expected("svg_dit_train.pt").Tensors;
        var ema = OfficialCheckpoints.LoadSvgDiT(Fixtures.Path_("svg_dit_train.pt"));
        Fixtures.AssertSameTensors(StateDict.WithPrefix(expected, "ema."), ema);
        var model = OfficialCheckpoints.LoadSvgDiT(Fixtures.Path_("svg_dit_train.pt"), entry: "model");
        Fixtures.AssertSameTensors(StateDict.WithPrefix(expected, "model."), model);
        Assert.False(Fixtures.Same(ema["pos_embed"], model["pos_embed"]));
        var e = Assert.Throws<CheckpointFormatException>(() => OfficialCheckpoints.LoadSvgDiT(Fixtures.Path_("svg_dit_train.pt"), entry: "nope"));
        Assert.Contains("'nope'", e.Message);
        Assert.Contains("model, ema, opt, args", e.Message);
    }

    [Fact]
    public void SvgDiT_PlainStateDictWithDdpPrefix_IsAccepted()
    {
        using var tmp = new TempFolder();
        var weights = Fixtures.Expected("svg_dit_ema.pt").Tensors;
        SafeTensors.Save(tmp.File("ddp.safetensors"), weights.ToDictionary(kv => "module." + kv.Key, kv => kv.Value));
        Fixtures.AssertSameTensors(weights, OfficialCheckpoints.LoadSvgDiT(tmp.File("ddp.safetensors")));
    }

    [Fact]
    public void SvgAutoencoderCkpt_SplitsComponents_DropsLoss_ResolvesViews()
    {
        var expected = Fixtures.Expected("svg_autoencoder.ckpt");
        var ae = OfficialCheckpoints.LoadSvgAutoencoder(Fixtures.Path_("svg_autoencoder.ckpt"));
        Fixtures.AssertSameTensors(expected.Tensors, ae.All); // includes the transposed heads.2.weight and the shared norm_vit storage
        var dropped = JsonSerializer.Deserialize<string[]>(expected.Metadata["dropped"])!;
        Assert.Equal(dropped, ae.DroppedLossKeys);
        Assert.Equal(StateDict.WithPrefix(expected.Tensors, "decoder.").Keys.Order(), ae.Decoder.Keys.Order());
        Assert.Contains("heads.2.weight", ae.Residual.Keys);
        Assert.Contains("encoder.pos_embedding", ae.Residual.Keys);
        Assert.Equal(["cls_token", "storage_tokens", "mask_token", "patch_embed.proj.weight", "patch_embed.proj.bias", "rope_embed.periods"], ae.Dino.Keys);
        Assert.Equal(ScalarType.Float32, ae.Dino["rope_embed.periods"].dtype);
        Assert.Equal(Bf16Periods, ae.Dino["rope_embed.periods"].data<float>().ToArray());
        Assert.NotNull(ae.MaskToken);
        Assert.Equal([1L, 4, 1], ae.MaskToken!.shape);
        Assert.Equal(["bias", "weight"], ae.NormVit.Keys.Order());
        Assert.Empty(ae.Other);
        // The two norm_vit views of one storage come back independent.
        ae.NormVit["weight"].add_(1);
        Assert.True(Fixtures.Same(ae.NormVit["bias"], expected.Tensors["norm_vit.bias"]));
    }

    [Fact]
    public void SvgAutoencoderCkpt_NonWeightEntries_AreParsedAsInertDataButNeverMaterialised()
    {
        using var ckpt = TorchCheckpoint.Open(Fixtures.Path_("svg_autoencoder.ckpt"));
        Assert.Equal(["epoch", "global_step", "pytorch-lightning_version", "state_dict", "loops", "callbacks", "optimizer_states",
                      "lr_schedulers", "hparams_name", "hyper_parameters", "hparams_type"], ckpt.TopLevelKeys);
        Assert.Equal(39L, ckpt.Entry("epoch"));
        var hp = Assert.IsType<PickleDict>(ckpt.Entry("hyper_parameters"));
        Assert.Equal("lightning_fabric.utilities.data.AttributeDict", hp.TypeName);
        Assert.Equal("omegaconf.dictconfig.DictConfig", Assert.IsType<PickleObject>(hp["ddconfig"]).Type.FullName);
        Assert.Equal("numpy.core.multiarray.scalar", Assert.IsType<PickleObject>(hp["learning_rate"]).Type.FullName);
        Assert.Contains("omegaconf.dictconfig.DictConfig", ckpt.Globals);
        Assert.Contains("pathlib.PurePosixPath", ckpt.Globals);
        // The optimizer moments are tensor references only: reading one on request works.
        var opt = Assert.IsType<List<object?>>(ckpt.Entry("optimizer_states"));
        var state = (PickleDict)((PickleDict)((PickleDict)opt[0]!)["state"]!)[0L]!;
        using var step = ckpt.ReadTensor(Assert.IsType<TensorRef>(state["step"]));
        Assert.Equal(100f, step.item<float>());
    }

    [Fact]
    public void FeatureStatistics_LoadAsFloat32_1x1x392_AndRoundTripThroughSafetensors()
    {
        var expected = Fixtures.Expected("dinov3_sp_stats.pt").Tensors;
        var stats = OfficialCheckpoints.LoadFeatureStatistics(Fixtures.Path_("dinov3_sp_stats.pt"));
        Assert.Equal(392, stats.Channels);
        Assert.Equal([1L, 1, 392], stats.Mean.shape);
        Assert.Equal(new[] { -0.131083f, 0.010059f, -0.161521f }, stats.Mean.flatten()[..3].data<float>().ToArray());
        Assert.True(Fixtures.Same(stats.Mean, expected["dinov3_sp_mean"]));
        Assert.True(Fixtures.Same(stats.Std, expected["dinov3_sp_std"]));

        using var tmp = new TempFolder();
        OfficialCheckpoints.SaveFeatureStatistics(tmp.File("stats.safetensors"), stats);
        var again = OfficialCheckpoints.LoadFeatureStatistics(tmp.File("stats.safetensors"));
        Assert.True(Fixtures.Same(again.Mean, stats.Mean) && Fixtures.Same(again.Std, stats.Std));
    }

    [Fact]
    public void ReadTensors_SniffsEachFormat()
    {
        Assert.Equal(CheckpointFormat.TorchZip, Checkpoint.DetectFormat(Fixtures.Path_("svg_dit_ema.pt")));
        Assert.Equal(CheckpointFormat.SafeTensors, Checkpoint.DetectFormat(Fixtures.Path_("svg_dit_ema.pt.expected.safetensors")));
        Assert.Equal(CheckpointFormat.HuggingFaceFolder, Checkpoint.DetectFormat(Fixtures.Path_("dinov3_tiny_hf")));
        var viaZip = Checkpoint.ReadTensors(Fixtures.Path_("svg_dit_ema.pt"), null, out var entry);
        Assert.Equal("ema", entry);
        Fixtures.AssertSameTensors(Checkpoint.ReadTensors(Fixtures.Path_("svg_dit_ema.pt.expected.safetensors")), viaZip);
        // HF layout: 5 embedding tensors + final norm 2 + 19 per layer (q/k/v split, no k bias) = 45.
        Assert.Equal(45, Checkpoint.ReadTensors(Fixtures.Path_("dinov3_tiny_hf")).Count);
    }
}
