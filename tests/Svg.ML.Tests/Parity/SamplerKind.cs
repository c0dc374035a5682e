using System.Text.Json.Nodes;
using Svg.ML.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Parity;

/// <summary>
/// Golden kind "sampler": <c>RectifiedFlow(m).sample(z0, y, null_cond, ...)</c> for each run of <c>config.runs</c>;
/// outputs <c>&lt;run&gt;.z</c>, <c>.t_seq</c>, <c>.dt_seq</c>, <c>.call_t</c>, <c>.call_y</c> (every model call,
/// conditional then unconditional) and, when stored, <c>.traj</c> (z entering steps 1 … S−1).
/// </summary>
public sealed class SamplerKind : IGoldenKind
{
    public string Kind => "sampler";

    /// <summary>Sampler options of one official run description.</summary>
    public static SamplerOptions OptionsOf(JsonObject run) => new(
        Steps: run["steps"]!.GetValue<int>(),
        Method: run["mode"]!.GetValue<string>() switch
        {
            "euler" => SamplerMethod.Euler,
            "heun" => SamplerMethod.Heun,
            var m => throw new NotSupportedException($"sampler mode '{m}'"),
        },
        CfgScale: run["cfg"]!.GetValue<double>(),
        Guidance: GuidanceSchedule.Parse(run["cfg_mode"]!.GetValue<string>()),
        TimeShift: run["shift"]!.GetValue<double>());

    public Dictionary<string, Tensor> Run(GoldenCase golden)
    {
        using var model = DitKind.Build(golden);
        var sampler = new Sampler(model);
        Tensor z0 = golden.Inputs["z0"], y = golden.Inputs["y"];
        int nullClass = golden.Config["null_class"]?.GetValue<int>() ?? model.Config.NullClass;
        var result = new Dictionary<string, Tensor>();
        foreach (var node in golden.Config["runs"]!.AsArray())
        {
            var run = node!.AsObject();
            string name = run["name"]!.GetValue<string>();
            var options = OptionsOf(run);
            using Tensor? nullCond = run["cfg_null"]!.GetValue<bool>() ? Sampler.NullLabels(y, nullClass) : null;

            var callT = new List<Tensor>();
            var callY = new List<Tensor>();
            var traj = new List<Tensor>();
            var hooks = new SamplerHooks
            {
                ModelCall = (t, labels) =>
                {
                    callT.Add(t.clone().DetachFromDisposeScope());
                    callY.Add(labels.clone().DetachFromDisposeScope());
                },
                StepStart = (i, z) => { if (i > 0) traj.Add(z.clone().DetachFromDisposeScope()); },
            };
            result[$"{name}.z"] = sampler.Sample(z0, y, nullCond, options, hooks);
            var (tSeq, dtSeq) = Sampler.PrepareTimeSequence(options.Steps, options.TimeShift);
            result[$"{name}.t_seq"] = tSeq;
            result[$"{name}.dt_seq"] = dtSeq;
            result[$"{name}.call_t"] = torch.stack(callT);
            result[$"{name}.call_y"] = torch.stack(callY);
            if (traj.Count > 0) result[$"{name}.traj"] = torch.stack(traj);
            foreach (var tensor in callT.Concat(callY).Concat(traj)) tensor.Dispose();
        }
        return result;
    }
}
