using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Networks;

/// <summary>
/// The generator a network's dropout layers draw from: libtorch's global generator until <see cref="Seed"/> gives the
/// network a private one (the trainer does, so training never draws from or advances the process-wide stream).
/// </summary>
internal sealed class DropoutRandom : IDisposable
{
    /// <summary>The private generator, or null for libtorch's global one.</summary>
    public Generator? Generator { get; private set; }

    /// <summary>Replaces the generator by a private one seeded with <paramref name="seed"/>.</summary>
    public void Seed(long seed)
    {
        Generator?.Dispose();
        Generator = new Generator((ulong)seed);
    }

    public void Dispose()
    {
        Generator?.Dispose();
        Generator = null;
    }
}

/// <summary>
/// Dropout (inverted: kept values are scaled by 1/(1 − p) in training; the identity in eval mode) drawing its masks from
/// the network's <see cref="DropoutRandom"/>. It has no parameters or buffers, like <c>torch.nn.Dropout</c>.
/// </summary>
internal sealed class SeededDropout : nn.Module<Tensor, Tensor>
{
    private readonly double _p;
    private readonly DropoutRandom _random;

    public SeededDropout(double p, DropoutRandom random)
        : base("Dropout")
    {
        _p = p;
        _random = random;
    }

    /// <summary>The probability of zeroing a value in training.</summary>
    public double P => _p;

    public override Tensor forward(Tensor input)
    {
        if (!training || _p == 0)
            return input.alias();
        using var scope = torch.NewDisposeScope();
        Tensor keep;
        using (torch.no_grad())
        {
            // The private generator is a CPU generator: on another device the mask is drawn on the CPU and moved.
            keep = input.device_type == DeviceType.CPU
                ? torch.empty_like(input).bernoulli_(1 - _p, _random.Generator).div_(1 - _p)
                : torch.empty(input.shape).bernoulli_(1 - _p, _random.Generator).div_(1 - _p).to(input.device);
        }

        return (input * keep).MoveToOuterDisposeScope();
    }
}
