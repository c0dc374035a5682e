using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Svg.ML.Training;

/// <summary>
/// Reads and writes the moments of TorchSharp's <see cref="Adam"/> and <see cref="AdamW"/> (managed implementations
/// whose per-parameter state is <c>step</c>, <c>exp_avg</c>, <c>exp_avg_sq</c>, <c>max_exp_avg_sq</c>) as named tensors,
/// so that they go into a safetensors checkpoint next to the weights:
/// <code>
/// {prefix}.exp_avg.{param}, {prefix}.exp_avg_sq.{param}, [{prefix}.max_exp_avg_sq.{param}], {prefix}.step  (int64 [P])
/// </code>
/// Parameters are named by the caller, in the order they were given to the optimiser (one parameter group).
/// Restoring copies values into the optimiser's existing state tensors: the next <c>step()</c> continues exactly.
/// </summary>
public static class OptimizerMoments
{
    /// <summary>Copies of the state of <paramref name="optimizer"/> under <paramref name="prefix"/> (CPU tensors).</summary>
    public static Dictionary<string, Tensor> Export(optim.Optimizer optimizer, IReadOnlyList<string> parameterNames, string prefix) =>
        Export(optimizer, parameterNames, prefix, copy: true);

    /// <summary>The state under <paramref name="prefix"/>: the optimiser's own moment tensors (<paramref name="copy"/>
    /// false: valid until the next step; only the step tensor is new) or CPU copies.</summary>
    internal static Dictionary<string, Tensor> Export(optim.Optimizer optimizer, IReadOnlyList<string> parameterNames, string prefix, bool copy)
    {
        Tensor Out(Tensor t) => copy ? t.detach().cpu().clone() : t;
        var states = States(optimizer, parameterNames);
        var result = new Dictionary<string, Tensor>();
        var steps = new long[states.Count];
        for (int i = 0; i < states.Count; i++)
        {
            var (step, expAvg, expAvgSq, maxExpAvgSq) = states[i];
            string name = parameterNames[i];
            steps[i] = step;
            result[$"{prefix}.exp_avg.{name}"] = Out(expAvg);
            result[$"{prefix}.exp_avg_sq.{name}"] = Out(expAvgSq);
            if (maxExpAvgSq is not null) result[$"{prefix}.max_exp_avg_sq.{name}"] = Out(maxExpAvgSq);
        }
        result[$"{prefix}.step"] = tensor(steps);
        return result;
    }

    /// <summary>
    /// Restores what <see cref="Export(optim.Optimizer, IReadOnlyList{string}, string)"/> wrote. Throws <see cref="InvalidDataException"/> when an entry is missing or
    /// has another shape.
    /// </summary>
    public static void Import(optim.Optimizer optimizer, IReadOnlyList<string> parameterNames, IReadOnlyDictionary<string, Tensor> tensors, string prefix)
    {
        var stateList = optimizer is OptimizerHelper helper ? helper.state_dict().State : throw Unsupported(optimizer);
        if (stateList.Count != parameterNames.Count)
            throw new InvalidOperationException($"The optimiser holds {stateList.Count} parameters but {parameterNames.Count} names were given.");
        if (!tensors.TryGetValue($"{prefix}.step", out var stepTensor) || stepTensor.numel() != parameterNames.Count)
            throw new InvalidDataException($"The checkpoint has no optimiser steps '{prefix}.step' for {parameterNames.Count} parameters.");
        var steps = stepTensor.to(ScalarType.Int64).data<long>().ToArray();

        using var _ = no_grad();
        for (int i = 0; i < stateList.Count; i++)
        {
            string name = parameterNames[i];
            Tensor Get(string kind, Tensor like)
            {
                string key = $"{prefix}.{kind}.{name}";
                if (!tensors.TryGetValue(key, out var t))
                    throw new InvalidDataException($"The checkpoint has no optimiser state '{key}'.");
                if (!t.shape.SequenceEqual(like.shape))
                    throw new InvalidDataException($"Optimiser state '{key}' is [{string.Join(",", t.shape)}], the parameter is [{string.Join(",", like.shape)}].");
                return t;
            }
            switch (stateList[i])
            {
                case AdamW.State s:
                    s.step = steps[i];
                    s.exp_avg.copy_(Get("exp_avg", s.exp_avg));
                    s.exp_avg_sq.copy_(Get("exp_avg_sq", s.exp_avg_sq));
                    if (s.max_exp_avg_sq is not null) s.max_exp_avg_sq.copy_(Get("max_exp_avg_sq", s.max_exp_avg_sq));
                    break;
                case Adam.State s:
                    s.step = steps[i];
                    s.exp_avg.copy_(Get("exp_avg", s.exp_avg));
                    s.exp_avg_sq.copy_(Get("exp_avg_sq", s.exp_avg_sq));
                    if (s.max_exp_avg_sq is not null) s.max_exp_avg_sq.copy_(Get("max_exp_avg_sq", s.max_exp_avg_sq));
                    break;
                default:
                    throw Unsupported(optimizer);
            }
        }
    }

    /// <summary>Adds <paramref name="steps"/> to every parameter's step count (the moments are unchanged, as after
    /// steps with zero gradients and no weight decay).</summary>
    public static void AdvanceSteps(optim.Optimizer optimizer, long steps)
    {
        if (optimizer is not OptimizerHelper helper) throw Unsupported(optimizer);
        foreach (var state in helper.state_dict().State)
            switch (state)
            {
                case AdamW.State s: s.step += steps; break;
                case Adam.State s: s.step += steps; break;
                default: throw Unsupported(optimizer);
            }
    }

    static List<(long Step, Tensor ExpAvg, Tensor ExpAvgSq, Tensor? MaxExpAvgSq)> States(optim.Optimizer optimizer, IReadOnlyList<string> names)
    {
        if (optimizer is not OptimizerHelper helper) throw Unsupported(optimizer);
        var list = helper.state_dict().State;
        if (list.Count != names.Count)
            throw new InvalidOperationException($"The optimiser holds {list.Count} parameters but {names.Count} names were given.");
        return list.Select(state => state switch
        {
            AdamW.State s => (s.step, s.exp_avg, s.exp_avg_sq, (Tensor?)s.max_exp_avg_sq),
            Adam.State s => (s.step, s.exp_avg, s.exp_avg_sq, (Tensor?)s.max_exp_avg_sq),
            _ => throw Unsupported(optimizer),
        }).ToList();
    }

    static NotSupportedException Unsupported(optim.Optimizer optimizer) =>
        new($"Saving the state of {optimizer.GetType().Name} is not supported (Adam and AdamW are).");
}
