using Bnb.Optim;
using Bnb.Quantization;
using Bnb.Runtime;

namespace Bnb.Tests;

/// <summary>One cpu_ref runtime per test class, with a default-policy context and a Propagate-policy context.</summary>
public sealed class CpuRefFixture : IDisposable
{
    private readonly Lazy<State> _state = new(() => new State());

    internal BnbRuntime Runtime => _state.Value.Runtime;

    internal Quantizer Quantizer => _state.Value.Quantizer;

    /// <summary>Quantizer whose context encodes NaN/Inf as bitsandbytes does.</summary>
    internal Quantizer PropagatingQuantizer => _state.Value.Propagating;

    internal OptimizerKernels Optimizers => _state.Value.Optimizers;

    public void Dispose()
    {
        if (_state.IsValueCreated)
        {
            _state.Value.Dispose();
        }
    }

    private sealed class State : IDisposable
    {
        private readonly BnbContext _context;
        private readonly BnbContext _propagatingContext;

        public State()
        {
            Runtime = TestEnvironment.CreateRuntime(false, "cpu_ref");
            var backend = Runtime.GetBackend("cpu_ref");
            _context = backend.CreateContext();
            _propagatingContext = backend.CreateContext(nonFinitePolicy: NonFinitePolicy.Propagate);
            Quantizer = new Quantizer(_context);
            Propagating = new Quantizer(_propagatingContext);
            Optimizers = new OptimizerKernels(_context);
        }

        public BnbRuntime Runtime { get; }

        public Quantizer Quantizer { get; }

        public Quantizer Propagating { get; }

        public OptimizerKernels Optimizers { get; }

        public void Dispose()
        {
            _context.Dispose();
            _propagatingContext.Dispose();
            Runtime.Dispose();
        }
    }
}
