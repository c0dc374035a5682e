using Svg.ML.Checkpoints;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Checkpoints;

/// <summary>This library's own weights: a module saved as safetensors loads back by name, with its metadata.</summary>
public class ModuleWeightsTests
{
    [Fact]
    public void SaveModule_LoadModule_RoundTripsValuesAndMetadata()
    {
        using var tmp = new TempFolder();
        var source = OfficialCheckpoints.LoadSvgDiT(Fixtures.Path_("svg_dit_ema.pt"));
        using var a = KeyedModule.Like(source);
        StateDict.Load(a, source);
        Checkpoint.SaveModule(a, tmp.File("dit.safetensors"), new Dictionary<string, string> { ["config"] = "{\"hidden\":8}" });

        using var b = KeyedModule.Like(source);
        var meta = Checkpoint.LoadModule(b, tmp.File("dit.safetensors"));
        Assert.Equal("{\"hidden\":8}", meta["config"]);
        Assert.Equal("pt", meta["format"]);
        Fixtures.AssertSameTensors(source, b.state_dict());
    }

    [Fact]
    public void LoadModule_ReadsOfficialPickles_Too()
    {
        var expected = Fixtures.Expected("svg_dit_ema.pt").Tensors;
        using var module = KeyedModule.Like(expected);
        var meta = Checkpoint.LoadModule(module, Fixtures.Path_("svg_dit_ema.pt"));
        Assert.Empty(meta);
        Fixtures.AssertSameTensors(expected, module.state_dict());
    }
}
