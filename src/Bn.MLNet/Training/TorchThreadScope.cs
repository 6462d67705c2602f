using TorchSharp;

namespace Bn.MLNet.Training;

/// <summary>
/// Sets libtorch's process-wide intra-op thread count (<c>torch.set_num_threads</c>) for a scope and puts the previous
/// value back when disposed, also when the scope ends with an exception, so the host's setting survives training.
/// </summary>
internal sealed class TorchThreadScope : IDisposable
{
    private readonly int _previous;
    private bool _disposed;

    private TorchThreadScope(int threads)
    {
        _previous = torch.get_num_threads();
        if (threads != _previous)
        {
            torch.set_num_threads(threads);
        }
    }

    /// <summary>Uses <paramref name="threads"/> threads until the returned scope is disposed.</summary>
    public static TorchThreadScope Set(int threads) => new(threads);

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (torch.get_num_threads() != _previous)
        {
            torch.set_num_threads(_previous);
        }
    }
}
