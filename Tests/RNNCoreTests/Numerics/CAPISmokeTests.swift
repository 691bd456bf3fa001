// A smoke test of the C ABI called directly from Swift: versions, status strings, argument checks, and one
// kernel end to end.

import CRNNCore
import RNNCore
import Testing

@Suite("Numerics: C API smoke test")
struct NumericCAPISmokeTests {
    static let statuses: [rnncore_status] = [
        RNNCORE_OK, RNNCORE_ERR_NULL_POINTER, RNNCORE_ERR_INVALID_SIZE, RNNCORE_ERR_SIZE_OVERFLOW,
        RNNCORE_ERR_INVALID_ARGUMENT, RNNCORE_ERR_INDEX_OUT_OF_RANGE, RNNCORE_ERR_NON_FINITE, RNNCORE_ERR_ALIASING,
    ]

    @Test func versionsMatchTheHeader() throws {
        let version = try #require(rnncore_version())
        #expect(String(cString: version) == "\(RNNCORE_VERSION_MAJOR).\(RNNCORE_VERSION_MINOR).\(RNNCORE_VERSION_PATCH)")
        #expect(rnncore_version_number()
                == RNNCORE_VERSION_MAJOR * 10000 + RNNCORE_VERSION_MINOR * 100 + RNNCORE_VERSION_PATCH)
        #expect(rnncore_abi_version() == RNNCORE_ABI_VERSION)
    }

    @Test func statusCodesAreStableAndDescribed() throws {
        // The values are part of the ABI.
        #expect(Self.statuses.map(\.rawValue) == [0, -1, -2, -3, -4, -5, -6, -7])
        var texts: Set<String> = []
        for status in Self.statuses {
            let text = String(cString: try #require(rnncore_status_string(status)))
            #expect(!text.isEmpty, "status \(status.rawValue)")
            texts.insert(text)
            // The Swift wrapper shows the same text.
            #expect(KernelStatus(rawValue: status.rawValue).description == text)
        }
        #expect(texts.count == Self.statuses.count, "two statuses share a description")
        // Unknown codes get a generic, non-empty text.
        #expect(!String(cString: try #require(rnncore_status_string(rnncore_status(rawValue: -99)))).isEmpty)
        #expect(KernelStatus.indexOutOfRange.rawValue == RNNCORE_ERR_INDEX_OUT_OF_RANGE.rawValue)
        #expect(KernelStatus.nonFinite.rawValue == RNNCORE_ERR_NON_FINITE.rawValue)
    }

    @Test func nullAndInvalidArgumentsAreRejected() throws {
        var param: [Float] = [1, 2]
        let grad: [Float] = [1, 1]
        #expect(rnncore_sgd_step(nil, grad, 2, 0.1) == RNNCORE_ERR_NULL_POINTER)
        #expect(param.withUnsafeMutableBufferPointer { rnncore_sgd_step($0.baseAddress, nil, 2, 0.1) }
                == RNNCORE_ERR_NULL_POINTER)
        var window = rnncore_window(N: 2, T: 3, D: 5, H: 4, truncation: 0)
        var sizes = rnncore_cell_sizes()
        #expect(rnncore_rnn_sizes(nil, &window) == RNNCORE_ERR_NULL_POINTER)
        #expect(rnncore_rnn_sizes(&sizes, nil) == RNNCORE_ERR_NULL_POINTER)
        var empty = rnncore_window(N: 0, T: 3, D: 5, H: 4, truncation: 0)
        #expect(rnncore_rnn_sizes(&sizes, &empty) == RNNCORE_ERR_INVALID_SIZE)
        window.truncation = -1
        #expect(rnncore_gru_sizes(&sizes, &window) == RNNCORE_ERR_INVALID_ARGUMENT)
        window.truncation = 0
        #expect(rnncore_rnn_sizes(&sizes, &window) == RNNCORE_OK)
        // dA and the shifted states (2·N·T·H), then the carried state gradient (N·H); no cache.
        #expect(sizes.gates == 1 && sizes.states == 1 && sizes.cache == 0 && sizes.workspace == (2 * 2 * 3 + 2) * 4)
        #expect(rnncore_lstm_sizes(&sizes, &window) == RNNCORE_OK)
        #expect(sizes.gates == 4 && sizes.states == 2 && sizes.cache == 5 * 2 * 3 * 4)
        #expect(rnncore_gru_sizes(&sizes, &window) == RNNCORE_OK)
        #expect(sizes.gates == 3 && sizes.states == 1 && sizes.cache == 4 * 2 * 3 * 4)
        #expect(param.withUnsafeMutableBufferPointer { rnncore_sgd_step($0.baseAddress, grad, 2, -1) }
                == RNNCORE_ERR_INVALID_ARGUMENT)
        // In place is an aliasing error.
        #expect(param.withUnsafeMutableBufferPointer { rnncore_sgd_step($0.baseAddress, $0.baseAddress, 2, 0.1) }
                == RNNCORE_ERR_ALIASING)
        // Nothing was written by the rejected calls.
        expectApproximatelyEqual(param.map(Double.init), [1, 2], tolerance: .exact, "param after rejected calls")
    }

    @Test func affineKernelFromSwift() throws {
        // y = x·W + b for x (2, 3), W (3, 2), b (2).
        let x: [Float] = [1, 2, 3, 4, 5, 6]
        let w: [Float] = [1, 0, 0, 1, 1, 1]
        let b: [Float] = [0.5, -0.5]
        var y = [Float](repeating: 0, count: 4)
        let status = y.withUnsafeMutableBufferPointer { rnncore_affine_forward($0.baseAddress, x, w, b, 2, 3, 2) }
        #expect(status == RNNCORE_OK)
        let expected = NumericsReference.affine(x: x.map(Double.init), w: w.map(Double.init), b: b.map(Double.init),
                                                M: 2, D: 3, O: 2)
        // Small integers and halves: every product and sum is exact in float.
        expectApproximatelyEqual(y.map(Double.init), expected, tolerance: .exact, "C affine forward")
    }
}
