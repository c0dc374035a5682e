using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Training;

/// <summary>What a loop hands to a checkpoint: tensors (owned by the snapshot when listed in <see cref="Owned"/>), the
/// weights to check for finiteness, and extra JSON state.</summary>
internal sealed class CheckpointSnapshot : IDisposable
{
    public List<KeyValuePair<string, Tensor>> Tensors { get; } = new();
    public List<(string Name, Tensor Tensor)> Weights { get; } = new();
    public JsonObject State { get; } = new();
    public List<IDisposable> Owned { get; } = new();

    /// <summary>Adds a module's state dict under <paramref name="prefix"/> (tensors are the module's, not copies).</summary>
    public void AddModule(string prefix, nn.Module module, bool checkFinite = true)
    {
        foreach (var (name, t) in module.state_dict())
        {
            Tensors.Add(new(prefix + name, t));
            if (checkFinite) Weights.Add((prefix + name, t));
        }
    }

    /// <summary>Adds an optimiser's moments (its live tensors, not copies: the checkpoint is written before the next
    /// step); only the step-count tensor is owned.</summary>
    public void AddOptimizer(optim.Optimizer optimizer, IReadOnlyList<string> names, string prefix)
    {
        var moments = OptimizerMoments.Export(optimizer, names, prefix, copy: false);
        string stepKey = prefix + ".step";
        foreach (var kv in moments)
        {
            Tensors.Add(kv);
            if (kv.Key == stepKey) Owned.Add(kv.Value);
        }
    }

    /// <summary>Adds tensors that the snapshot disposes.</summary>
    public void AddOwned(IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        foreach (var kv in tensors)
        {
            Tensors.Add(kv);
            Owned.Add(kv.Value);
        }
    }

    public void Dispose()
    {
        foreach (var d in Owned) d.Dispose();
        Owned.Clear();
    }
}
