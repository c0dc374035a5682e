using Svg.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Diffusion;

/// <summary>
/// The random draws of one flow-matching loss evaluation. Any null member is drawn by
/// <see cref="RectifiedFlow.Loss"/> (from its generator, when given). Supplying them replays a run exactly.
/// </summary>
/// <param name="Z0">Noise <c>z0</c>, same shape as the data (official: <c>torch.randn_like(x)</c>).</param>
/// <param name="TRaw">Un-shifted times <c>[B]</c> in [0, 1) (official: <c>torch.rand(B)</c>).</param>
/// <param name="LabelDropUniforms">Uniforms <c>[B]</c> for label dropout in training mode: label i becomes the null
/// class when <c>u_i &lt; class_dropout_prob</c> (official: <c>torch.rand(B)</c> inside <c>LabelEmbedder.token_drop</c>).
/// Ignored in evaluation mode.</param>
public sealed record FlowNoise(Tensor? Z0 = null, Tensor? TRaw = null, Tensor? LabelDropUniforms = null);

/// <summary>The flow-matching loss and the intermediate values of its evaluation.</summary>
/// <param name="Loss">Scalar loss: <c>mse.mean()</c>.</param>
/// <param name="Mse">Per-sample mean squared error <c>[B]</c> over all non-batch dimensions.</param>
/// <param name="TShifted">The shifted times <c>[B]</c> given to the model.</param>
/// <param name="LabelsUsed">The labels the model embedded <c>[B]</c> (after training label dropout).</param>
/// <param name="Zt">The interpolated input <c>z_t</c> given to the model.</param>
public sealed record FlowLossResult(Tensor Loss, Tensor Mse, Tensor TShifted, Tensor LabelsUsed, Tensor Zt) : IDisposable
{
    /// <summary>Disposes every tensor of the result.</summary>
    public void Dispose()
    {
        Loss.Dispose(); Mse.Dispose(); TShifted.Dispose(); LabelsUsed.Dispose(); Zt.Dispose();
    }
}

/// <summary>
/// Rectified flow (<c>rectified_flow/rectified_flow.py</c>) — t = 0 is noise, t = 1 is data:
/// <code>
/// t   = shift(u),  u ~ U(0, 1),   shift(t) = s·t / (1 + (s − 1)·t)       (s = 0.4 in SVG training)
/// z_t = (1 − t)·z0 + t·x,         z0 ~ N(0, I)
/// v*  = x − z0                                                             (target velocity)
/// mse = mean over (T, C) of (model(z_t, t, y)[..., :C] − v*)²,             loss = mean over the batch
/// </code>
/// </summary>
public sealed class RectifiedFlow
{
    /// <summary>Time shift used for SVG training.</summary>
    public const double TrainingShift = 0.4;

    /// <summary>The velocity model.</summary>
    public SvgDiT Model { get; }

    /// <summary>Wraps <paramref name="model"/> for loss computation.</summary>
    public RectifiedFlow(SvgDiT model)
    {
        TorchRuntime.EnsureInitialized();
        Model = model;
    }

    /// <summary>
    /// The official time shift in float32 tensor arithmetic (<c>compute_tm</c>): <c>s·t / (1 + (s − 1)·t)</c>;
    /// identity when <paramref name="shift"/> ≤ 0. s &lt; 1 moves times towards 0 (noise).
    /// </summary>
    public static Tensor ShiftTime(Tensor t, double shift)
    {
        if (shift <= 0) return t.alias();
        using var scope = NewDisposeScope();
        return (shift * t / (1 + (shift - 1) * t)).MoveToOuterDisposeScope();
    }

    /// <summary>The time shift in float64 (as the sampler's <c>prepare_t_seq</c> applies it to Python floats).</summary>
    public static double ShiftTime(double t, double shift) => shift <= 0 ? t : shift * t / (1 + (shift - 1) * t);

    /// <summary>
    /// The draws <see cref="Loss"/> makes from <paramref name="generator"/> for data of shape <paramref name="shape"/>,
    /// in its order: z0, t, then (when <paramref name="labelDropout"/>: training mode with class dropout) the
    /// label-dropout uniforms. Data-parallel training draws them for the global batch on every rank and slices its part.
    /// </summary>
    public static FlowNoise DrawNoise(long[] shape, ScalarType dtype, Device device, bool labelDropout, Generator? generator)
    {
        var z0 = DrawZ0(shape, dtype, device, generator);
        var tRaw = DrawUniforms(shape[0], device, generator);
        return new FlowNoise(z0, tRaw, labelDropout ? DrawUniforms(shape[0], device, generator) : null);
    }

    static Tensor DrawZ0(long[] shape, ScalarType dtype, Device device, Generator? generator) =>
        DeviceRandom.Randn(shape, generator, device, dtype);   // drawn on the CPU, then moved: any device

    static Tensor DrawUniforms(long count, Device device, Generator? generator) =>
        DeviceRandom.Rand([count], generator, device);

    /// <summary>
    /// The training loss of <see cref="Model"/> on data tokens <paramref name="x"/> <c>[B, T, C]</c> (already
    /// feature-normalised) with labels <paramref name="y"/> <c>[B]</c>. Randomness comes from <paramref name="noise"/>
    /// where given, else from <paramref name="generator"/> (a CPU generator; else the global CPU generator): z0, then t,
    /// then (training mode only) the label-dropout uniforms — drawn on the CPU and moved to <paramref name="x"/>'s device
    /// (<see cref="DeviceRandom"/>), so the same generator state gives the same noise on every device.
    /// The returned tensors are owned by the caller (dispose the result); gradients flow into <see cref="FlowLossResult.Loss"/>.
    /// </summary>
    public FlowLossResult Loss(Tensor x, Tensor y, double shift = TrainingShift, FlowNoise? noise = null, Generator? generator = null)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0];
        Tensor z0 = noise?.Z0 ?? DrawZ0(x.shape, x.dtype, x.device, generator);
        Tensor tRaw = noise?.TRaw ?? DrawUniforms(b, x.device, generator);
        Tensor t = ShiftTime(tRaw.to(x.device), shift);

        // Label dropout: the model's own rule, with the uniforms drawn here so that they can be injected.
        Tensor? dropIds = null;
        if (Model.training && Model.Config.ClassDropoutProb > 0)
        {
            Tensor u = noise?.LabelDropUniforms ?? DrawUniforms(b, x.device, generator);
            dropIds = (u.to(x.device) < Model.Config.ClassDropoutProb).to(int64);
        }
        Tensor labelsUsed = dropIds is null ? y.clone() : Model.LabelEmbedder.TokenDrop(y, dropIds);

        long[] tShape = Enumerable.Repeat(1L, (int)x.dim()).ToArray();
        tShape[0] = b;
        Tensor tx = t.view(tShape);                               // t broadcast over all non-batch dimensions
        Tensor target = x - z0;                                   // v* = x − z0
        Tensor zt = (1 - tx) * z0 + tx * x;                       // z_t = (1 − t)·z0 + t·x
        zt = zt.to(x.dtype);
        t = t.to(x.dtype);

        Tensor output = Model.forward(zt, t, y, dropIds).to(x.dtype);    // a bf16 model's output: the loss in x's dtype
        if (output.shape[2] != x.shape[2]) output = output.chunk(2, 2)[0]; // drop the learned-sigma half
        Tensor mse = (output - target).pow(2).mean(Enumerable.Range(1, (int)x.dim() - 1).Select(d => (long)d).ToArray());
        Tensor loss = mse.mean();
        return new FlowLossResult(loss.MoveToOuterDisposeScope(), mse.MoveToOuterDisposeScope(), t.MoveToOuterDisposeScope(),
                                  labelsUsed.MoveToOuterDisposeScope(), zt.MoveToOuterDisposeScope());
    }
}
