using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Encoders.Onnx;

/// <summary>
/// Maps a CNTK-exported basic-block ResNet ONNX graph (ML.NET's <c>ResNet18.onnx</c>) onto <see cref="ResNet18"/>'s
/// torchvision-style parameter names by walking the graph from its input, never by initializer names
/// (CNTK names them <c>ParameterNN</c>/<c>ConstantNN</c>):
/// <code>
/// input → Conv → BatchNormalization → Relu → MaxPool            conv1, bn1
/// per block:  x → Conv(3×3) → BN → Relu → Conv(3×3) → BN ┐       layer{s}.{b}.conv1, bn1, conv2, bn2
///             x → [Conv(1×1) → BN] ──────────────────────→ Add → Relu   layer{s}.{b}.downsample.0, .1
/// → AveragePool (the pooled output)
/// </code>
/// Every Conv's kernel, stride, pads, dilations and group and every BN's ε are checked against the
/// <see cref="ResNetConfig"/>; any difference fails with the offending node named.
/// BatchNormalization inputs (X, scale, B, mean, var) map to weight, bias, running_mean, running_var.
/// The mean image (<c>ResNetPreprocess.onnx</c>: Split → Concat(B, G, R) → Sub(MeanImage)) maps to <c>mean_image</c>.
/// </summary>
public static class OnnxResNetImporter
{
    /// <summary>The import result: weights by parameter name and the ONNX value names of the stage outputs.</summary>
    /// <param name="Weights">Parameter and buffer tensors (CPU, float32) keyed like <see cref="ResNet18"/>'s state dict.</param>
    /// <param name="StageOutputs">ONNX value name of each stage's output (index 0 = layer1).</param>
    /// <param name="PooledOutput">ONNX value name of the average-pooled output.</param>
    /// <param name="InputName">ONNX graph input name of the network.</param>
    public sealed record Result(Dictionary<string, Tensor> Weights, string[] StageOutputs, string PooledOutput, string InputName);

    /// <summary>Walks <paramref name="network"/> and <paramref name="preprocess"/> and returns the weights.</summary>
    public static Result Import(OnnxGraph network, OnnxGraph preprocess, ResNetConfig config)
    {
        var w = new Dictionary<string, Tensor>();
        try
        {
            var input = network.Inputs.Single().Name;
            var stemConv = Single(network, input, "Conv", "the stem convolution");
            CheckConv(stemConv, config.StemKernel, 2, config.StemConvPads);
            AddConv(network, w, "conv1", stemConv);
            var stemBn = Single(network, stemConv.Outputs[0], "BatchNormalization", "the stem batch norm");
            AddBatchNorm(network, w, "bn1", stemBn, config.BatchNormEpsilon);
            var stemRelu = Single(network, stemBn.Outputs[0], "Relu", "the stem ReLU");
            var pool = Single(network, stemRelu.Outputs[0], "MaxPool", "the stem max pool");
            Check(pool, "kernel_shape", pool.GetInts("kernel_shape"), new long[] { 3, 3 });
            Check(pool, "strides", pool.GetInts("strides"), new long[] { 2, 2 });
            Check(pool, "pads", pool.GetInts("pads", new long[4]), config.StemPoolPads.Select(p => (long)p).ToArray());

            string x = pool.Outputs[0];
            var stageOutputs = new string[4];
            for (int s = 0; s < 4; s++)
            {
                for (int b = 0; b < config.Layers[s]; b++)
                {
                    string prefix = $"layer{s + 1}.{b}.";
                    int stride = s > 0 && b == 0 ? 2 : 1;
                    bool projected = stride != 1 || (b == 0 && s > 0 && config.Widths[s] != config.Widths[s - 1]);
                    var convs = network.Consumers(x).Where(n => n.OpType == "Conv").ToList();
                    var conv1 = convs.SingleOrDefault(n => n.GetInts("kernel_shape").SequenceEqual(new long[] { 3, 3 }))
                                ?? throw Structure($"block {prefix.TrimEnd('.')}: no single 3×3 Conv consumes '{x}'");
                    CheckConv(conv1, 3, stride, stride == 1 ? new[] { 1, 1, 1, 1 } : config.StridedConvPads);
                    AddConv(network, w, prefix + "conv1", conv1);
                    var bn1 = Single(network, conv1.Outputs[0], "BatchNormalization", prefix + "bn1");
                    AddBatchNorm(network, w, prefix + "bn1", bn1, config.BatchNormEpsilon);
                    var relu1 = Single(network, bn1.Outputs[0], "Relu", prefix + "relu");
                    var conv2 = Single(network, relu1.Outputs[0], "Conv", prefix + "conv2");
                    CheckConv(conv2, 3, 1, new[] { 1, 1, 1, 1 });
                    AddConv(network, w, prefix + "conv2", conv2);
                    var bn2 = Single(network, conv2.Outputs[0], "BatchNormalization", prefix + "bn2");
                    AddBatchNorm(network, w, prefix + "bn2", bn2, config.BatchNormEpsilon);
                    var add = Single(network, bn2.Outputs[0], "Add", prefix + "residual add");
                    string shortcut = add.Inputs.Single(i => i != bn2.Outputs[0]);
                    if (projected)
                    {
                        var dsBn = network.Producer(shortcut);
                        if (dsBn?.OpType != "BatchNormalization") throw Structure($"block {prefix.TrimEnd('.')}: expected a projection shortcut (1×1 Conv + BN), found '{shortcut}'");
                        var dsConv = network.Producer(dsBn.Inputs[0]);
                        if (dsConv?.OpType != "Conv" || dsConv.Inputs[0] != x) throw Structure($"block {prefix.TrimEnd('.')}: the shortcut BN is not fed by a Conv of the block input");
                        CheckConv(dsConv, 1, stride, new[] { 0, 0, 0, 0 });
                        AddConv(network, w, prefix + "downsample.0", dsConv);
                        AddBatchNorm(network, w, prefix + "downsample.1", dsBn, config.BatchNormEpsilon);
                    }
                    else if (shortcut != x)
                        throw Structure($"block {prefix.TrimEnd('.')}: expected an identity shortcut from '{x}', found '{shortcut}'");
                    if (convs.Count != (projected ? 2 : 1))
                        throw Structure($"block {prefix.TrimEnd('.')}: {convs.Count} Conv nodes consume '{x}'");
                    x = Single(network, add.Outputs[0], "Relu", prefix + "output ReLU").Outputs[0];
                }
                stageOutputs[s] = x;
            }
            var avg = network.Consumers(x).ToList();
            if (avg.Count != 1 || avg[0].OpType is not ("AveragePool" or "GlobalAveragePool"))
                throw Structure($"after {config.Layers.Sum()} blocks expected the average pool, found {string.Join(", ", avg.Select(n => n.Describe()))} " +
                                $"(the graph's stage layout differs from [{string.Join(",", config.Layers)}])");

            var sub = preprocess.Nodes.SingleOrDefault(n => n.OpType == "Sub")
                      ?? throw Structure("preprocess graph: no Sub node (mean-image subtraction)");
            var concat = preprocess.Producer(sub.Inputs[0]);
            var split = preprocess.Nodes.SingleOrDefault(n => n.OpType == "Split");
            if (concat?.OpType != "Concat" || split is null || !concat.Inputs.SequenceEqual(new[] { split.Outputs[2], split.Outputs[1], split.Outputs[0] }))
                throw Structure("preprocess graph: expected Split(R, G, B) → Concat(B, G, R) → Sub(mean image)");
            w["mean_image"] = Init(preprocess, sub.Inputs[1], new long[] { 1, config.InChannels, config.ImageSize, config.ImageSize });

            return new Result(w, stageOutputs, avg[0].Outputs[0], input);
        }
        catch
        {
            foreach (var t in w.Values) t.Dispose();
            throw;
        }
    }

    static OnnxNode Single(OnnxGraph g, string value, string opType, string what)
    {
        var consumers = g.Consumers(value).Where(n => n.OpType == opType).ToList();
        if (consumers.Count != 1) throw Structure($"{what}: expected one {opType} consuming '{value}', found {consumers.Count}");
        return consumers[0];
    }

    static void CheckConv(OnnxNode conv, int kernel, int stride, int[] pads)
    {
        Check(conv, "kernel_shape", conv.GetInts("kernel_shape"), new long[] { kernel, kernel });
        Check(conv, "strides", conv.GetInts("strides", new long[] { 1, 1 }), new long[] { stride, stride });
        Check(conv, "pads", conv.GetInts("pads", new long[4]), pads.Select(p => (long)p).ToArray());
        Check(conv, "dilations", conv.GetInts("dilations", new long[] { 1, 1 }), new long[] { 1, 1 });
        Check(conv, "group", new[] { conv.GetInt("group", 1) }, new long[] { 1 });
        var autoPad = conv.GetString("auto_pad", "NOTSET");
        if (autoPad != "NOTSET") throw Structure($"{conv.Describe()}: auto_pad '{autoPad}' is not supported");
        if (conv.Inputs.Count > 2 && conv.Inputs[2].Length > 0) throw Structure($"{conv.Describe()}: a convolution bias is not expected");
    }

    static void Check(OnnxNode node, string attr, long[] actual, long[] expected)
    {
        if (!actual.SequenceEqual(expected))
            throw Structure($"{node.Describe()}: {attr} [{string.Join(",", actual)}], the configuration expects [{string.Join(",", expected)}]");
    }

    static void AddConv(OnnxGraph g, Dictionary<string, Tensor> w, string name, OnnxNode conv) =>
        w[name + ".weight"] = Init(g, conv.Inputs[1], null);

    static void AddBatchNorm(OnnxGraph g, Dictionary<string, Tensor> w, string name, OnnxNode bn, double eps)
    {
        double e = bn.GetFloat("epsilon", 1e-5f);
        if (Math.Abs(e - eps) > 1e-6 * eps) throw Structure($"{bn.Describe()}: epsilon {e}, the configuration expects {eps}");
        w[name + ".weight"] = Init(g, bn.Inputs[1], null);
        w[name + ".bias"] = Init(g, bn.Inputs[2], null);
        w[name + ".running_mean"] = Init(g, bn.Inputs[3], null);
        w[name + ".running_var"] = Init(g, bn.Inputs[4], null);
    }

    static Tensor Init(OnnxGraph g, string name, long[]? shape)
    {
        if (!g.Initializers.TryGetValue(name, out var t)) throw Structure($"initializer '{name}' not found");
        if (t.DataType != OnnxDataType.Float) throw Structure($"initializer '{name}' is {t.DataType}, expected Float");
        if (shape is not null && !t.Dims.SequenceEqual(shape))
            throw Structure($"initializer '{name}' has shape [{string.Join(",", t.Dims)}], expected [{string.Join(",", shape)}]");
        return t.ToTensor();
    }

    static InvalidDataException Structure(string message) =>
        new($"ONNX ResNet graph does not match the expected structure: {message}.");
}
