using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Svg.ML.Encoders;

/// <summary>
/// torchvision <c>vision_transformer.Encoder</c>: y = ln( layers( dropout(x + pos_embedding) ) ).
/// Keys: <c>pos_embedding</c> [1, N+1, D], <c>layers.encoder_layer_{i}.*</c>, <c>ln.*</c>.
/// </summary>
public sealed class VitEncoder : nn.Module<Tensor, Tensor>
{
    Parameter pos_embedding;
    readonly Dropout dropout;
    readonly Sequential layers;
    readonly LayerNorm ln;

    /// <summary>Creates the encoder; <c>pos_embedding</c> ~ N(0, 0.02²) as torchvision initialises it.</summary>
    public VitEncoder(ResidualEncoderConfig config) : base(nameof(VitEncoder))
    {
        pos_embedding = nn.Parameter(empty(1, config.SequenceLength, config.HiddenDim).normal_(0, 0.02));
        dropout = nn.Dropout(config.Dropout);
        layers = nn.Sequential(Enumerable.Range(0, config.NumLayers)
            .Select(i => ($"encoder_layer_{i}", (nn.Module<Tensor, Tensor>)new VitEncoderBlock(config)))
            .ToArray());
        ln = nn.LayerNorm(config.HiddenDim, eps: config.LayerNormEps);
        RegisterComponents();
    }

    /// <summary>[B, N+1, D] → [B, N+1, D].</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = dropout.forward(x + pos_embedding);
        h = layers.forward(h);
        return scope.MoveToOuter(ln.forward(h));
    }
}

/// <summary>
/// torchvision <c>EncoderBlock</c> (pre-norm):
/// <code>
///   x = x + dropout( self_attention( ln_1(x) ) )
///   x = x + mlp( ln_2(x) )           mlp = Linear(D→M) → GELU → Dropout → Linear(M→D) → Dropout
/// </code>
/// Keys: <c>ln_1.*</c>, <c>self_attention.in_proj_weight</c>, <c>self_attention.in_proj_bias</c>,
/// <c>self_attention.out_proj.*</c>, <c>ln_2.*</c>, <c>mlp.0.*</c>, <c>mlp.3.*</c>.
/// </summary>
public sealed class VitEncoderBlock : nn.Module<Tensor, Tensor>
{
    readonly LayerNorm ln_1, ln_2;
    readonly MultiheadSelfAttention self_attention;
    readonly Dropout dropout;
    readonly Sequential mlp;

    /// <summary>Creates a block with torchvision's initialisation of the MLP (Xavier-uniform weights, N(0, 1e-12) biases).</summary>
    public VitEncoderBlock(ResidualEncoderConfig config) : base(nameof(VitEncoderBlock))
    {
        ln_1 = nn.LayerNorm(config.HiddenDim, eps: config.LayerNormEps);
        self_attention = new MultiheadSelfAttention(config.HiddenDim, config.NumHeads, config.AttentionDropout);
        dropout = nn.Dropout(config.Dropout);
        ln_2 = nn.LayerNorm(config.HiddenDim, eps: config.LayerNormEps);
        var fc1 = nn.Linear(config.HiddenDim, config.MlpDim);
        var fc2 = nn.Linear(config.MlpDim, config.HiddenDim);
        using (no_grad())
        {
            foreach (var fc in new[] { fc1, fc2 })
            {
                nn.init.xavier_uniform_(fc.weight!);
                nn.init.normal_(fc.bias!, std: 1e-6);
            }
        }
        mlp = nn.Sequential(fc1, nn.GELU(), nn.Dropout(config.Dropout), fc2, nn.Dropout(config.Dropout));
        RegisterComponents();
    }

    /// <summary>[B, T, D] → [B, T, D].</summary>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = self_attention.forward(ln_1.forward(input));
        x = dropout.forward(x) + input;
        var y = mlp.forward(ln_2.forward(x));
        return scope.MoveToOuter(x + y);
    }
}

/// <summary>
/// <c>nn.MultiheadAttention(D, heads, dropout, batch_first=True)</c> used as self-attention, computed exactly as
/// <c>F.multi_head_attention_forward</c> does (the path torch takes when attention dropout is non-zero, even in eval):
/// <code>
///   [q | k | v] = x W_inᵀ + b_in                      (one packed projection, chunked in thirds)
///   per head:  a = softmax( (q / √d) kᵀ )             (q scaled before the product)
///              o = dropout(a) v                       (dropout only in training)
///   y = concat_heads(o) W_outᵀ + b_out
/// </code>
/// Keys: <c>in_proj_weight</c> [3D, D], <c>in_proj_bias</c> [3D], <c>out_proj.weight</c>, <c>out_proj.bias</c>.
/// </summary>
public sealed class MultiheadSelfAttention : nn.Module<Tensor, Tensor>
{
    Parameter in_proj_weight;
    Parameter in_proj_bias;
    readonly Linear out_proj;
    readonly int _numHeads;
    readonly double _dropout;

    /// <summary>Creates the attention with PyTorch's MHA initialisation (Xavier-uniform in-projection, zero biases).</summary>
    public MultiheadSelfAttention(int embedDim, int numHeads, double dropout) : base(nameof(MultiheadSelfAttention))
    {
        _numHeads = numHeads;
        _dropout = dropout;
        in_proj_weight = nn.Parameter(empty(3L * embedDim, embedDim));
        in_proj_bias = nn.Parameter(zeros(3L * embedDim));
        out_proj = nn.Linear(embedDim, embedDim);
        using (no_grad())
        {
            nn.init.xavier_uniform_(in_proj_weight);
            out_proj.bias!.zero_();
        }
        RegisterComponents();
    }

    /// <summary>Self-attention over [B, T, D] → [B, T, D].</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long B = x.shape[0], T = x.shape[1], D = x.shape[2], d = D / _numHeads;
        var qkv = nn.functional.linear(x, in_proj_weight, in_proj_bias).chunk(3, dim: -1);
        // [B, T, D] → [B·heads, T, d] (the same per-head vectors as torch's [T, B·heads, d] layout)
        Tensor Heads(Tensor t) => t.reshape(B, T, _numHeads, d).transpose(1, 2).reshape(B * _numHeads, T, d);
        var q = Heads(qkv[0]);
        var k = Heads(qkv[1]);
        var v = Heads(qkv[2]);
        q = q / Math.Sqrt(d);
        var attn = q.bmm(k.transpose(-2, -1)).softmax(-1);
        if (training && _dropout > 0) attn = nn.functional.dropout(attn, _dropout, training: true);
        var o = attn.bmm(v);                                                  // [B·heads, T, d]
        o = o.reshape(B, _numHeads, T, d).transpose(1, 2).reshape(B, T, D);
        return scope.MoveToOuter(out_proj.forward(o));
    }
}
